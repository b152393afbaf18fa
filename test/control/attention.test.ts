import { describe, expect, it } from "vitest";
import { attentionAt, startAttention, tickAttention } from "../../src/control/index.js";

const BUDGET = 250;

describe("attention clock", () => {
  it("attention - follows wall time while the loop ticks on time", () => {
    let s = startAttention(1_000);
    for (let t = 1_100; t <= 3_000; t += 100) s = tickAttention(s, t, BUDGET);
    expect(attentionAt(s, 3_050, BUDGET)).toBe(3_050);
  });

  it("attention - a block beyond the budget is not counted, also while it is still in progress", () => {
    let s = startAttention(0);
    s = tickAttention(s, 100, BUDGET);
    // Blocked from 100 until 3,100: a late timer reads the clock before the next tick.
    expect(attentionAt(s, 3_100, BUDGET)).toBe(100 + BUDGET);
    s = tickAttention(s, 3_100, BUDGET);
    expect(attentionAt(s, 3_100, BUDGET)).toBe(100 + BUDGET);
    s = tickAttention(s, 3_200, BUDGET);
    expect(attentionAt(s, 3_200, BUDGET)).toBe(100 + BUDGET + 100);
  });

  it("attention - never decreases as wall time and ticks go on", () => {
    let s = startAttention(0);
    let wall = 0;
    let last = attentionAt(s, wall, BUDGET);
    const gaps = [100, 100, 2_000, 90, 400, 100, 5_000, 260, 100];
    for (const g of gaps) {
      for (let k = 1; k <= 4; k++) {
        const v = attentionAt(s, wall + (g * k) / 4, BUDGET);
        expect(v).toBeGreaterThanOrEqual(last);
        last = v;
      }
      wall += g;
      s = tickAttention(s, wall, BUDGET);
      const v = attentionAt(s, wall, BUDGET);
      expect(v).toBeGreaterThanOrEqual(last);
      last = v;
    }
  });
});
