// Background threads yield the CPU to ingest and queries: a thread lowers its
// own scheduling priority (a higher nice value) for the Linux scheduler.
// Linux schedules each thread as a task of its own, so setpriority on the
// thread's id (from /proc/thread-self) moves only that thread; raising one's
// own nice value needs no privilege. Elsewhere (or without /proc) it does
// nothing and says so.
import { execFileSync } from "node:child_process";
import { readlinkSync } from "node:fs";
import { setPriority } from "node:os";

/** The calling thread's id on Linux (undefined elsewhere). */
export function threadId(): number | undefined {
  try {
    // "<pid>/task/<tid>"
    const tid = Number(readlinkSync("/proc/thread-self").split("/").at(-1));
    return Number.isInteger(tid) && tid > 0 ? tid : undefined;
  } catch {
    return undefined;
  }
}

/** Sets the calling thread's nice value (0..19); returns why it could not, or undefined. */
export function niceThisThread(nice: number): string | undefined {
  const tid = threadId();
  if (tid === undefined) return "no /proc/thread-self (not Linux): the thread keeps its priority";
  try {
    setPriority(tid, nice);
    return undefined;
  } catch (e) {
    return `setpriority(${tid}, ${nice}) failed: ${(e as Error).message}`;
  }
}

/**
 * Moves the calling thread to SCHED_IDLE: it runs only on a core no other
 * thread wants, and is preempted as soon as one does (a nice value still
 * shares: on these machines a nice-10 thread kept a third of a core while
 * ingest waited). Any thread may lower itself to it without privilege; util-
 * linux's chrt makes the call (Node has no binding). When it cannot, the thread
 * takes nice 19, the lowest nice value; returns why, or undefined.
 */
export function idleThisThread(): string | undefined {
  const tid = threadId();
  if (tid === undefined) return "no /proc/thread-self (not Linux): the thread keeps its priority";
  try {
    execFileSync("chrt", ["--idle", "--pid", "0", String(tid)], { stdio: "pipe", timeout: 5_000 });
    return undefined;
  } catch (e) {
    const why = `chrt --idle --pid 0 ${tid} failed (${(e as Error).message.split("\n")[0]})`;
    return `${why}; ${niceThisThread(19) ?? "nice 19 instead"}`;
  }
}
