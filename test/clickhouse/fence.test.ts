// Fence tokens (src/clickhouse/fence.ts), pure: a newer lease revision always
// raises past an older one, an owner's retries count up within its revision,
// and an owner finds itself fenced once a newer revision holds the fence.
import { describe, expect, it } from "vitest";
import { FENCE_EPOCHS, fenceConditionSql, nextFenceToken } from "../../src/clickhouse/index.js";

describe("fence tokens", () => {
  it("token - a revision starts at its own base, counts up for retries, and is fenced by a newer revision", () => {
    expect(nextFenceToken(3, 0)).toEqual({ token: 3 * FENCE_EPOCHS });
    expect(nextFenceToken(3, 3 * FENCE_EPOCHS)).toEqual({ token: 3 * FENCE_EPOCHS + 1 });
    // An older revision's tokens, however many retries it made, are below a newer one's base.
    expect(nextFenceToken(4, 3 * FENCE_EPOCHS + FENCE_EPOCHS - 1)).toEqual({ token: 4 * FENCE_EPOCHS });
    expect(nextFenceToken(3, 4 * FENCE_EPOCHS)).toEqual({ fencedBy: 4 });
    // Revision 0 (one node, no leases) has no rival: it counts up past anything.
    expect(nextFenceToken(0, 0)).toEqual({ token: 1 });
    expect(nextFenceToken(0, 41)).toEqual({ token: 42 });
  });

  it("token - a revision that used up its epochs is fenced rather than spilling into the next revision's", () => {
    expect(nextFenceToken(2, 2 * FENCE_EPOCHS + FENCE_EPOCHS - 1)).toEqual({ fencedBy: 2 });
  });

  it("condition - names the tenant's fence table and the shard, and refuses names specs cannot have", () => {
    expect(fenceConditionSql("acme", "trades", 5, 12)).toBe("throwIf((SELECT max(`token`) FROM `px_acme`.`_px_sink_fence` WHERE `table` = 'trades' AND `shard` = 5) != 12) = 0");
    expect(() => fenceConditionSql("acme", "x'; DROP", 5, 12)).toThrow(/identifier/);
    expect(() => fenceConditionSql("acme", "trades", 70_000, 12)).toThrow(/0\.\.65535/);
  });
});
