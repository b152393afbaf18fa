// The observer's "attention" clock: wall time minus the time its own event
// loop was blocked (a long synchronous query, a GC pause). Liveness is judged
// on it: a node is declared dead only after the observer has been *watching*
// for the node timeout without seeing a heartbeat. Without it, a leader whose
// loop was blocked for longer than the node timeout woke up, ran its expired
// reconcile timer before the heartbeats queued behind the block were
// delivered, and judged every node dead (its own too). Pure: the wiring
// (src/node/control/attentionclock.ts) ticks it from a timer.

export interface AttentionState {
  /** Wall time of the last tick. */
  readonly lastTick: number;
  /** Blocked time (beyond the tick budget) accumulated before lastTick. */
  readonly pausedMs: number;
}

export const startAttention = (wallNow: number): AttentionState => ({ lastTick: wallNow, pausedMs: 0 });

/**
 * A tick at `wallNow`; ticks are `budgetMs` apart when the loop is free
 * (the tick period plus the lateness a free loop shows): anything beyond that
 * was a block.
 */
export function tickAttention(s: AttentionState, wallNow: number, budgetMs: number): AttentionState {
  const gap = wallNow - s.lastTick;
  return { lastTick: Math.max(s.lastTick, wallNow), pausedMs: s.pausedMs + Math.max(0, gap - budgetMs) };
}

/**
 * Attention time at `wallNow`: also discounts a block still in progress
 * (read by a timer that fired late, before the tick that would account it).
 * Never decreases as wall time and ticks go on.
 */
export function attentionAt(s: AttentionState, wallNow: number, budgetMs: number): number {
  return wallNow - s.pausedMs - Math.max(0, wallNow - s.lastTick - budgetMs);
}
