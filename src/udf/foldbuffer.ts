// An aggregate's rows gathered host-side into batches of up to UDF_BATCH_ROWS
// before they cross into the sandbox: the operators hand a fold one symbol's
// (or one chunk's) segments at a time, and a groupBy over a thousand symbols
// made a thousand small crossings, each costing more than its rows (a worker
// thread's wake-up for WebAssembly, buffer copies for QuickJS). Segments keep
// their order; one cut at a batch's end continues in the next (same group).

export class FoldBuffer {
  private gids = new Int32Array(64);
  private ends = new Int32Array(64);
  private segs = 0;
  private rows = 0;
  private readonly cols: Float64Array[];

  constructor(
    columns: number,
    private readonly cap: number,
    private readonly flushTo: (gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[]) => void,
  ) {
    this.cols = Array.from({ length: columns }, () => new Float64Array(cap));
  }

  /** Segment r: rows from the previous segment's end up to ends[r], of group gids[r]. */
  add(gids: Int32Array, ends: Int32Array, cols: readonly Float64Array[]): void {
    let from = 0;
    for (let r = 0; r < gids.length; r++) {
      const end = ends[r]!;
      while (from < end) {
        const take = Math.min(end - from, this.cap - this.rows);
        for (let k = 0; k < cols.length; k++) this.cols[k]!.set(cols[k]!.subarray(from, from + take), this.rows);
        this.push(gids[r]!, this.rows + take);
        this.rows += take;
        from += take;
        if (this.rows === this.cap) this.flush();
      }
    }
  }

  /** Hands what is gathered to the sandbox. */
  flush(): void {
    if (this.rows === 0) return;
    this.flushTo(
      this.gids.subarray(0, this.segs),
      this.ends.subarray(0, this.segs),
      this.cols.map((c) => c.subarray(0, this.rows)),
    );
    this.segs = 0;
    this.rows = 0;
  }

  private push(gid: number, end: number): void {
    // The same group right after itself (a symbol's rows over several calls): one segment.
    if (this.segs > 0 && this.gids[this.segs - 1] === gid) {
      this.ends[this.segs - 1] = end;
      return;
    }
    if (this.segs === this.gids.length) {
      const g = new Int32Array(this.segs * 2);
      g.set(this.gids);
      this.gids = g;
      const e = new Int32Array(this.segs * 2);
      e.set(this.ends);
      this.ends = e;
    }
    this.gids[this.segs] = gid;
    this.ends[this.segs] = end;
    this.segs++;
  }
}
