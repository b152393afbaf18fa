// The WAL reader's liveness check (src/wal/stall.ts) on a simulated clock:
// quiet only after stallMs without a delivery, stalled only when the subject
// holds more than was delivered and nothing arrived since the ask.
import { describe, expect, it } from "vitest";
import { StallWatch } from "../../src/wal/index.js";

describe("wal - stall watch", () => {
  it("stall - quiet after stallMs without a delivery; a delivery re-arms it", () => {
    const w = new StallWatch(101, 1_000, 0);
    expect(w.quiet(999)).toBe(false);
    expect(w.quiet(1_000)).toBe(true);
    w.delivered(101, 1_000);
    expect(w.quiet(1_999)).toBe(false);
    expect(w.quiet(2_000)).toBe(true);
  });

  it("stall - behind the subject's last LSN after the quiet time: stalled, and the message names both LSNs", () => {
    const w = new StallWatch(1, 1_000, 0);
    w.delivered(3085, 500);
    expect(w.quiet(1_500)).toBe(true);
    const why = w.verdict(7867, 1_500, 1_510);
    expect(why).toMatch(/nothing delivered for 1010 ms after LSN 3085 while the subject holds up to LSN 7867/);
  });

  it("stall - current with the subject (idle, not stuck): not stalled, and asked again only after another stallMs", () => {
    const w = new StallWatch(1, 1_000, 0);
    w.delivered(50, 0);
    expect(w.verdict(50, 1_000, 1_010)).toBeUndefined();
    expect(w.quiet(1_500)).toBe(false);
    expect(w.quiet(2_010)).toBe(true);
    // Nothing ever delivered and nothing there: the reader's first LSN is past the subject's last.
    const fresh = new StallWatch(51, 1_000, 0);
    expect(fresh.verdict(50, 1_000, 1_000)).toBeUndefined();
  });

  it("stall - a delivery between the ask and its answer wins: not stalled", () => {
    const w = new StallWatch(1, 1_000, 0);
    w.delivered(10, 0);
    const askedAt = 1_000;
    w.delivered(11, 1_005);
    expect(w.verdict(500, askedAt, 1_020)).toBeUndefined();
  });
});
