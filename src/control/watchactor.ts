// Turns an async "start watching, get a stop function" subscription into the
// body of an xstate fromCallback: retries a failed start, re-opens a watch
// that breaks after it started, and stops a watch that finished starting after
// the actor was already stopped.
// A KV watch that breaks (its consumer is gone, its iterator ended or failed)
// delivers nothing more (kv.ts): re-opening it is the caller's job, and a
// caller that let it lie stayed deaf for good. The agent's px_assign watch
// then missed every later assignment of its node while the node kept
// heartbeating: shards the leader gave it were hosted by no node, silently.

/** Starts a watch; the watch calls `onBroken` (at most once) when it stops delivering by itself. */
export type StartWatch = (onBroken: (e: unknown) => void) => Promise<() => void>;

export function runWatch(start: StartWatch, onError: (e: unknown) => void, retryMs = 1_000): () => void {
  let stopped = false;
  let stop: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Each open is a generation: a late report from an earlier one is ignored.
  let generation = 0;
  // A break is re-opened at once (the watch worked until then); one within retryMs of the last waits retryMs, so a watch
  // that keeps breaking is not re-opened in a tight loop.
  let lastBreak = Number.NEGATIVE_INFINITY;
  const again = (): void => {
    if (!stopped) timer = setTimeout(attempt, retryMs);
  };
  const attempt = (): void => {
    const mine = ++generation;
    const broken = (e: unknown): void => {
      if (stopped || mine !== generation) return;
      generation++;
      onError(e);
      const s = stop;
      stop = undefined;
      s?.();
      const now = Date.now();
      const soon = now - lastBreak < retryMs;
      lastBreak = now;
      if (soon) again();
      else attempt();
    };
    start(broken).then(
      (s) => {
        if (stopped || mine !== generation) s();
        else stop = s;
      },
      (e: unknown) => {
        if (mine !== generation) return;
        onError(e);
        again();
      },
    );
  };
  attempt();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    stop?.();
  };
}
