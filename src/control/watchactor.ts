// Turns an async "start watching, get a stop function" subscription into the
// body of an xstate fromCallback: retries a failed start, and stops a watch
// that finished starting after the actor was already stopped.

export type StartWatch = () => Promise<() => void>;

export function runWatch(start: StartWatch, onError: (e: unknown) => void, retryMs = 1_000): () => void {
  let stopped = false;
  let stop: (() => void) | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = (): void => {
    start().then(
      (s) => {
        if (stopped) s();
        else stop = s;
      },
      (e: unknown) => {
        onError(e);
        if (!stopped) timer = setTimeout(attempt, retryMs);
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
