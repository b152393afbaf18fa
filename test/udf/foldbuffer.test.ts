// FoldBuffer (src/udf/foldbuffer.ts): an aggregate's segments gathered into
// batches of at most `cap` rows keep every row with its group, in order, however
// the calls and the batches cut them.
import { describe, expect, it } from "vitest";
import { FoldBuffer } from "../../src/udf/foldbuffer.js";

/** Each row as "group:value". */
function rowsOf(gids: Int32Array, ends: Int32Array, col: Float64Array): string[] {
  const out: string[] = [];
  let from = 0;
  for (let r = 0; r < gids.length; r++) {
    for (let i = from; i < ends[r]!; i++) out.push(`${gids[r]}:${col[i]}`);
    from = ends[r]!;
  }
  return out;
}

describe("FoldBuffer", () => {
  it("batches of at most cap rows hold every row with its group, in order, across calls and cuts", () => {
    let seed = 7;
    const rnd = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (const cap of [1, 3, 10, 64]) {
      const want: string[] = [];
      const got: string[] = [];
      const sizes: number[] = [];
      const b = new FoldBuffer(1, cap, (gids, ends, cols) => {
        sizes.push(ends[ends.length - 1]!);
        got.push(...rowsOf(gids, ends, cols[0]!));
      });
      let v = 0;
      for (let call = 0; call < 40; call++) {
        const segs = rnd(5);
        const gids = Int32Array.from({ length: segs }, () => rnd(6));
        let end = 0;
        const ends = Int32Array.from({ length: segs }, () => (end += rnd(9)));
        const col = Float64Array.from({ length: end }, () => v++);
        want.push(...rowsOf(gids, ends, col));
        b.add(gids, ends, [col]);
      }
      b.flush();
      expect(got, `cap ${cap}`).toEqual(want);
      expect(sizes.every((n) => n <= cap && n > 0)).toBe(true);
      expect(sizes.slice(0, -1).every((n) => n === cap), `cap ${cap}: only the last batch is short`).toBe(true);
    }
  });
});
