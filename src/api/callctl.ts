// Cancellation and flow control of one streaming call: an AbortSignal that
// fires when the client cancels or the deadline passes (so the query engine
// stops its work), and writes that wait for the client to keep up.
import type { Metadata } from "@grpc/grpc-js";
import { ApiError } from "./errors.js";

interface CancellableCall {
  readonly cancelled: boolean;
  on(event: "cancelled", listener: () => void): unknown;
  getDeadline(): Date | number;
  readonly metadata: Metadata;
}

export interface CallControl {
  readonly signal: AbortSignal;
  /** Stops the deadline timer; call when the call has ended. */
  dispose(): void;
}

/** Longest a timer may be set for (setTimeout overflows beyond 2^31-1 ms). */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function controlCall(call: CancellableCall): CallControl {
  const ac = new AbortController();
  const onCancel = () => ac.abort(new ApiError("CANCELLED", "the client cancelled the call"));
  if (call.cancelled) onCancel();
  else call.on("cancelled", onCancel);
  let timer: NodeJS.Timeout | undefined;
  const deadline = call.getDeadline();
  const deadlineMs = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(deadlineMs)) {
    const left = Math.max(0, deadlineMs - Date.now());
    if (left <= MAX_TIMER_MS) {
      timer = setTimeout(() => ac.abort(new ApiError("DEADLINE_EXCEEDED", "the call's deadline passed")), left);
    }
  }
  return { signal: ac.signal, dispose: () => clearTimeout(timer) };
}

/** Writes `msg`, then waits until the stream can take more or the call is aborted. */
export interface FlowingWritable<T> {
  write(msg: T): boolean;
  on(event: "drain", listener: () => void): unknown;
  off(event: "drain", listener: () => void): unknown;
}

export async function writeFlowing<T>(call: FlowingWritable<T>, msg: T, signal: AbortSignal): Promise<void> {
  if (call.write(msg)) return;
  if (signal.aborted) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      call.off("drain", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    call.on("drain", done);
    signal.addEventListener("abort", done, { once: true });
  });
}
