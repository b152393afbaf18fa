// Retry delays of the sink: exponential backoff capped at `maxMs`, with
// ±20% jitter, built from effect's `Schedule`. `retryDelayMs(policy, n)` is a
// pure function of the policy (its seed included) and the attempt number, so
// the sink machine can compute it in a transition and tests can predict it.
import { Duration, Effect, Random, Schedule } from "effect";
import type { RetryPolicy } from "./types.js";

/** The schedule: base * factor^(n-1), at most maxMs, jittered. */
export function retrySchedule(policy: Pick<RetryPolicy, "baseMs" | "factor" | "maxMs">): Schedule.Schedule<Duration.Duration> {
  const cap = Duration.millis(policy.maxMs);
  return Schedule.exponential(Duration.millis(policy.baseMs), policy.factor).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, cap))),
    Schedule.jittered,
  );
}

/**
 * Delay (ms, rounded) before retry number `attempt` (1 = the first retry).
 * Deterministic for a given policy: the jitter comes from a PRNG seeded with
 * `policy.seed`, stepped once per attempt.
 */
export function retryDelayMs(policy: Pick<RetryPolicy, "baseMs" | "factor" | "maxMs" | "seed">, attempt: number): number {
  const steps = Math.max(1, Math.min(Math.floor(attempt), 64));
  const program = Effect.gen(function* () {
    const step = yield* Schedule.toStep(retrySchedule(policy));
    let delay = Duration.zero;
    for (let i = 0; i < steps; i++) [, delay] = yield* step(0, undefined);
    return Math.round(Duration.toMillis(delay));
  }).pipe(Random.withSeed(policy.seed));
  return Effect.runSync(program);
}
