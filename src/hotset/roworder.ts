// The order of rows within a symbol: (ts, lsn, row). The hot set keeps its
// series in it and picks seam rows by it; the query layer merges by it.

/** (ts, lsn, row) of a before b. */
export function before(ats: number, alsn: number, arow: number, bts: number, blsn: number, brow: number): boolean {
  return ats < bts || (ats === bts && (alsn < blsn || (alsn === blsn && arow < brow)));
}
