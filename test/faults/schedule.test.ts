// The nemesis's schedule is a pure function of the seed: the same seed replays
// the same faults, and any run of at least as many faults as kinds covers
// every kind.
import { describe, expect, it } from "vitest";
import { FAULT_KINDS, faultSchedule } from "./schedule.js";

describe("faults - schedule", () => {
  it("schedule - the same seed gives the same schedule, another seed another one", () => {
    const o = { faults: 12, nodes: 3, natsServers: 3 };
    expect(faultSchedule({ ...o, seed: 7 })).toEqual(faultSchedule({ ...o, seed: 7 }));
    expect(faultSchedule({ ...o, seed: 7 })).not.toEqual(faultSchedule({ ...o, seed: 8 }));
  });

  it("schedule - the first faults are every kind once; targets and hold times in range", () => {
    for (let seed = 0; seed < 50; seed++) {
      const s = faultSchedule({ seed, faults: 20, nodes: 3, natsServers: 3 });
      expect(new Set(s.slice(0, FAULT_KINDS.length).map((f) => f.kind)).size).toBe(FAULT_KINDS.length);
      for (const f of s) {
        expect(f.target).toBeGreaterThanOrEqual(0);
        expect(f.target).toBeLessThan(3);
        expect(f.holdMs).toBeGreaterThanOrEqual(500);
        expect(f.holdMs).toBeLessThanOrEqual(12_000);
        if (f.kind === "clock-jump") expect(Math.abs(f.skewS!)).toBeGreaterThanOrEqual(3);
        else expect(f.skewS).toBeUndefined();
      }
    }
  });

  it("schedule - a bad seed or fault count is refused, naming the input and the fix", () => {
    expect(() => faultSchedule({ seed: -1, faults: 5, nodes: 3, natsServers: 3 })).toThrow(/seed -1: must be a non-negative integer; pass --seed N/);
    expect(() => faultSchedule({ seed: 1, faults: 0, nodes: 3, natsServers: 3 })).toThrow(/faults 0: must be at least 1/);
  });
});
