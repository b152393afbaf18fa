// Lag remediation policy, pure: from each shard's sink lag (time and LSN)
// against its table's SLO, and what was decided before, the next remediation
// step. Escalates one step after lag stayed above the SLO for the dwell time;
// steps back one after it stayed at or below half the SLO for the dwell time
// (hysteresis: between half and the whole SLO the step holds). The machine in
// actors/remediation.ts runs it; the runtime turns steps into knobs.
import type { LagSlo } from "../../protocols/tablespec.js";

/** 0 none, 1 bigger sink batches, 2 hold eviction, 3 move the sink, 4 alert. */
export type LagStep = 0 | 1 | 2 | 3 | 4;

export { LAG_STEP_NAMES } from "../../protocols/shardstatus.js";

export const MAX_LAG_STEP: LagStep = 4;

/** Lag recovers once both figures are at or below this share of the SLO. */
export const LAG_RECOVERED_RATIO = 0.5;

export interface LagReading {
  /** tenant.table.bucket */
  readonly key: string;
  /** Age of the sink's oldest unpersisted record (ms). */
  readonly lagMs: number;
  /** WAL records the sink received and has not persisted. */
  readonly lagRecords: number;
  readonly slo: LagSlo;
}

/** What the workflow remembers of one shard. */
export interface ShardLagState {
  readonly step: LagStep;
  /** When lag was first seen above the SLO in the current run of such readings (undefined: it is not). */
  readonly aboveSinceMs: number | undefined;
  /** When lag was first seen recovered in the current run (undefined: it is not). */
  readonly belowSinceMs: number | undefined;
  /** When the step last changed. */
  readonly changedAtMs: number;
}

export interface StepChange {
  readonly key: string;
  readonly from: LagStep;
  readonly to: LagStep;
  /** The figures and the SLO that made it, for the event log. */
  readonly reason: string;
}

export const INITIAL_LAG_STATE: ShardLagState = { step: 0, aboveSinceMs: undefined, belowSinceMs: undefined, changedAtMs: 0 };

const describe = (r: LagReading): string => `lag ${(r.lagMs / 1000).toFixed(1)} s / ${r.lagRecords} records (SLO ${r.slo.seconds} s / ${r.slo.records} records)`;

export const overSlo = (r: LagReading): boolean => r.lagMs > r.slo.seconds * 1000 || r.lagRecords > r.slo.records;

const recovered = (r: LagReading): boolean => r.lagMs <= r.slo.seconds * 1000 * LAG_RECOVERED_RATIO && r.lagRecords <= r.slo.records * LAG_RECOVERED_RATIO;

/**
 * The next state of every shard read at `nowMs`, and the step changes to make.
 * A shard not read any more (moved away, stopped) is forgotten; one whose
 * table switched the workflow off goes straight back to step 0.
 */
export function planLagSteps(
  prev: Readonly<Record<string, ShardLagState>>,
  readings: readonly LagReading[],
  nowMs: number,
): { readonly next: Record<string, ShardLagState>; readonly changes: StepChange[] } {
  const next: Record<string, ShardLagState> = {};
  const changes: StepChange[] = [];
  for (const r of readings) {
    const s = prev[r.key] ?? { ...INITIAL_LAG_STATE, changedAtMs: nowMs };
    const dwellMs = r.slo.dwellSeconds * 1000;
    if (!r.slo.enabled) {
      if (s.step > 0) changes.push({ key: r.key, from: s.step, to: 0, reason: "the table's lagSlo.enabled is false" });
      next[r.key] = { ...INITIAL_LAG_STATE, changedAtMs: nowMs };
      continue;
    }
    if (overSlo(r)) {
      const above = s.aboveSinceMs ?? nowMs;
      // The dwell counts from whichever is later: lag going over, or the last step taken.
      if (s.step < MAX_LAG_STEP && nowMs - Math.max(above, s.changedAtMs) >= dwellMs) {
        const to = (s.step + 1) as LagStep;
        changes.push({ key: r.key, from: s.step, to, reason: `${describe(r)} for ${Math.round((nowMs - above) / 1000)} s` });
        next[r.key] = { step: to, aboveSinceMs: above, belowSinceMs: undefined, changedAtMs: nowMs };
      } else next[r.key] = { ...s, aboveSinceMs: above, belowSinceMs: undefined };
    } else if (recovered(r)) {
      const below = s.belowSinceMs ?? nowMs;
      if (s.step > 0 && nowMs - Math.max(below, s.changedAtMs) >= dwellMs) {
        const to = (s.step - 1) as LagStep;
        changes.push({ key: r.key, from: s.step, to, reason: `${describe(r)}: recovered for ${Math.round((nowMs - below) / 1000)} s` });
        next[r.key] = { step: to, aboveSinceMs: undefined, belowSinceMs: below, changedAtMs: nowMs };
      } else next[r.key] = { ...s, aboveSinceMs: undefined, belowSinceMs: below };
    } else {
      // Between half and the whole SLO: hold the step, both runs start over.
      next[r.key] = { ...s, aboveSinceMs: undefined, belowSinceMs: undefined };
    }
  }
  return { next, changes };
}
