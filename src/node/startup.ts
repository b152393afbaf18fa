// A node's start-up steps against JetStream (opening KV buckets, the object
// store, the catalog, the events stream) retried on timeouts: a NATS cluster
// still electing leaders (or whose meta leader has not heard from every peer
// yet), or a loaded machine, answers JetStream API requests with timeouts for
// a while, and a node that exits then needs a supervisor to
// come back. Other errors (permissions, bad config) fail at once.
import { Duration, Effect, Schedule } from "effect";

// "no suitable peers for placement": nats-server (2.10) places a replicated asset only once its meta leader
// has heard from every peer, which a cluster that is still forming has not; it passes like a timeout does.
const isTimeout = (e: unknown): boolean => {
  const err = (e as { cause?: unknown }).cause ?? e;
  return (err as Error)?.name === "TimeoutError" || /timeout|no suitable peers for placement/i.test(String((err as Error)?.message ?? err));
};

/** `step()`, tried up to `attempts` times while it times out (0.5 s, then 1.5x longer pauses); the last error otherwise. */
export function retryOnTimeout<T>(what: string, step: () => Promise<T>, log: (line: string) => void, attempts = 6): Promise<T> {
  return Effect.runPromise(
    Effect.tryPromise(step).pipe(
      Effect.tapError((e) => Effect.sync(() => (isTimeout(e) ? log(`${what} timed out; retrying`) : undefined))),
      Effect.retry({ schedule: Schedule.exponential(Duration.millis(500), 1.5), times: attempts - 1, while: isTimeout }),
    ),
  ).catch((e: unknown) => {
    // Effect wraps a rejected promise in UnknownError: rethrow what the step threw.
    throw (e as { cause?: unknown }).cause ?? e;
  });
}
