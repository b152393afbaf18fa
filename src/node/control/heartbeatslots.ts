// What the heartbeat cover's two threads share: the layout of the shared
// clock slots, the worker's configuration and its messages.

/** Slot of the main thread's last tick (epoch ms). */
export const COVER_MAIN_TICK = 0;
/** Slot of the last heartbeat put, by either thread (epoch ms). */
export const COVER_LAST_PUT = 1;
/** Slot of the main thread's last heartbeat put (epoch ms). */
export const COVER_MAIN_PUT = 2;
export const COVER_SLOTS = 3;

export interface CoverConfig {
  readonly servers: string | string[];
  readonly name: string;
  readonly credsPath: string | undefined;
  readonly caPath: string | undefined;
  /** `$KV.px_nodes.<node id>`: a KV put is a publish on the key's subject. */
  readonly subject: string;
  readonly periodMs: number;
  readonly graceMs: number;
  readonly shared: SharedArrayBuffer;
}

export type CoverMessage = { readonly type: "ready" } | { readonly type: "covered"; readonly puts: number; readonly busyMs: number } | { readonly type: "error"; readonly message: string };
