// Plausibility window of tick times at ingest: a table refuses ticks before its
// timeBounds.minTs or more than timeBounds.maxFutureSeconds ahead of the gateway's
// clock. Its job is to catch a wrong unit (seconds or milliseconds sent as
// microseconds land in 1970; nanoseconds land centuries ahead) before the WAL.
import { isoToMicros } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { BatchRejected } from "../codec/arrow.js";
import type { TimeWindow } from "./plan.js";

export function timeWindowOf(spec: TableSpec, nowMicros: number): TimeWindow {
  return { minMicros: isoToMicros(spec.timeBounds.minTs), maxMicros: nowMicros + spec.timeBounds.maxFutureSeconds * 1_000_000 };
}

function isoOf(us: number): string {
  const d = new Date(Math.floor(us / 1000));
  return Number.isFinite(d.getTime()) ? d.toISOString() : "out of the calendar";
}

/** Throws BatchRejected naming the column, the row, the value and the rule when a tick time is outside the window. */
export function checkTimeWindow(what: string, spec: TableSpec, ts: ArrayLike<number>, rows: number, w: TimeWindow): void {
  for (let r = 0; r < rows; r++) {
    const t = ts[r]!;
    if (t >= w.minMicros && t <= w.maxMicros) continue;
    const where = `${what}: column ${spec.timeColumn} row ${r}: ${t} (${isoOf(t)})`;
    const unitHint = "check the unit: seconds/milliseconds/nanoseconds? The time column is int64 microseconds since the Unix epoch (seconds x 1e6, milliseconds x 1e3), or send an Arrow timestamp type with its unit";
    if (t < w.minMicros) {
      throw new BatchRejected("INVALID_ARGUMENT", `${where} is before the table's earliest plausible time ${spec.timeBounds.minTs} (timeBounds.minTs); ${unitHint}. For a backfill of older data lower timeBounds.minTs in the table spec`);
    }
    throw new BatchRejected("INVALID_ARGUMENT", `${where} is more than ${spec.timeBounds.maxFutureSeconds} s ahead of the gateway's clock (timeBounds.maxFutureSeconds); ${unitHint}. For future-dated ticks raise timeBounds.maxFutureSeconds in the table spec`);
  }
}
