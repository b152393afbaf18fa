// Which row is a symbol's last before a time: its last hot row there or its
// seam row (the greatest row persisted and evicted), whichever is the later by
// (ts, lsn, row). A late hot row not yet persisted can be older than the seam
// row, so the newest hot row does not always win. The last-by board, the
// last-by operator and a fan-out's last rows all decide by this one rule.
import { before } from "./roworder.js";
import type { Series } from "./series.js";
import type { SeamRow } from "./types.js";

/** The index of the symbol's last hot row before `t1` when it is the answer; -1 when the seam row (if any) is. */
export function lastHotBefore(s: Series, t1: number, seam: SeamRow | null): number {
  const i = t1 === Infinity ? s.length - 1 : s.lowerBound(t1) - 1;
  return i >= 0 && seam !== null && before(s.tsAt(i), s.lsnAt(i), s.rowInRecordAt(i), seam.tsMicros, seam.lsn, seam.rowInRecord) ? -1 : i;
}
