// Micro-batching of WAL records, pure: which records a flush takes, whether
// the pending ones are due, and how long until they are. The sink machine
// keeps the pending list; these functions only decide.
import type { SinkLimits, SinkRecord } from "./types.js";

/** Records with an LSN above `afterLsn`, in order: redeliveries and already persisted records drop out. */
export function freshRecords(records: readonly SinkRecord[], afterLsn: number): SinkRecord[] {
  const out: SinkRecord[] = [];
  let last = afterLsn;
  for (const r of records) {
    if (r.lsn <= last) continue;
    out.push(r);
    last = r.lsn;
  }
  return out;
}

/** True when the pending records reach the row or byte limit. */
export function batchFull(pendingRows: number, pendingBytes: number, limits: SinkLimits): boolean {
  return pendingRows >= limits.maxBatchRows || pendingBytes >= limits.maxBatchBytes;
}

/**
 * Milliseconds until pending records whose oldest arrived at `oldestAtMs` are
 * due, seen at `nowMs`: 0 when overdue, never more than the delay limit.
 */
export function batchDelayMs(oldestAtMs: number, nowMs: number, limits: SinkLimits): number {
  return Math.min(limits.maxBatchDelayMs, Math.max(0, oldestAtMs + limits.maxBatchDelayMs - nowMs));
}

/**
 * Splits `pending` into the records one flush takes (oldest first, until the
 * row or byte limit is reached, at least one record) and the rest.
 */
export function takeBatch(pending: readonly SinkRecord[], limits: SinkLimits): [batch: SinkRecord[], rest: SinkRecord[]] {
  let rows = 0;
  let bytes = 0;
  let n = 0;
  while (n < pending.length && (n === 0 || (rows < limits.maxBatchRows && bytes < limits.maxBatchBytes))) {
    const r = pending[n]!;
    if (n > 0 && (rows + r.batch.rows > limits.maxBatchRows || bytes + r.bytes > limits.maxBatchBytes)) break;
    rows += r.batch.rows;
    bytes += r.bytes;
    n++;
  }
  return [pending.slice(0, n), pending.slice(n)];
}
