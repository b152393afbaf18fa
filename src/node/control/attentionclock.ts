// The process's attention clock (src/control/attention.ts) ticked by an
// unref'd timer: node liveness in the controller is judged on it, so a leader
// whose event loop was blocked does not count the block against other nodes.
import { attentionAt, startAttention, tickAttention } from "../../control/index.js";

const TICK_MS = 100;
/** A free loop fires a 100 ms timer within a few ms; 150 ms of lateness more counts as blocked. */
const BUDGET_MS = TICK_MS + 150;

export interface AttentionClock {
  now(): number;
  stop(): void;
}

export function startAttentionClock(wall: () => number = Date.now): AttentionClock {
  let s = startAttention(wall());
  const timer = setInterval(() => (s = tickAttention(s, wall(), BUDGET_MS)), TICK_MS);
  timer.unref();
  return { now: () => attentionAt(s, wall(), BUDGET_MS), stop: () => clearInterval(timer) };
}
