// Helpers shared by the agent and controller machines: the message of an
// unknown error, the stand-in for an IO actor the runtime must provide, and
// what the `noteError` action does (remember the last IO error, emit `ioError`).

/** The message of a thrown value, whatever was thrown. */
export const errorMessage = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** An IO actor body that fails loudly: the runtime forgot to `.provide()` it. */
export const notProvided =
  (machine: string, actor: string, provider: string) =>
  (): never => {
    throw new Error(`${machine}: actor ${actor} was not provided (use ${provider})`);
  };

/** The parameters of `noteError`: what failed and how. */
export interface IoErrorParams {
  readonly operation: string;
  readonly error: unknown;
}

/** The event `noteError` emits. */
export interface IoErrorEmitted {
  readonly type: "ioError";
  readonly operation: string;
  readonly message: string;
}

/**
 * What a machine's `noteError` action does with a failed IO call: keep
 * `lastError` ("operation: message") in context and emit `ioError`. The action
 * itself stays in each machine's `setup` so xstate types it for that machine.
 */
export function ioErrorNote(params: IoErrorParams): { readonly lastError: string; readonly emitted: IoErrorEmitted } {
  const message = errorMessage(params.error);
  return { lastError: `${params.operation}: ${message}`, emitted: { type: "ioError", operation: params.operation, message } };
}
