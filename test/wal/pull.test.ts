import { afterEach, describe, expect, it } from "vitest";
import { PULL_BUDGET_BYTES, PULL_HEADROOM_BYTES, pullOptions } from "../../src/wal/index.js";

const MB = 1024 * 1024;

describe("WAL pull options", () => {
  afterEach(() => {
    delete process.env.PX_UNSAFE_WAL_PULL_BY_MESSAGES;
  });

  it("pull - small records by messages (at most the caller's count, within the byte budget at twice their average size)", () => {
    // ~10 KB records (150-tick batches): the caller's 512 fit the budget only as far as 4 MB / 20 KB = 209.
    expect(pullOptions(8 * MB, 10_000, 512)).toEqual({ max_messages: Math.floor(PULL_BUDGET_BYTES / 20_000) });
    expect(pullOptions(8 * MB, 1_000, 256)).toEqual({ max_messages: 256 });
  });

  it("pull - records too large for a window of 100 within the budget are pulled by bytes: one max_payload plus headroom", () => {
    // 140 KB records (20 k-tick batches over 4 shards): 4 MB / 280 KB = 14 < 100, nats.js's window when pulling by bytes.
    expect(pullOptions(MB, 140_000, 256)).toEqual({ max_bytes: MB + PULL_HEADROOM_BYTES });
    expect(pullOptions(8 * MB, PULL_BUDGET_BYTES / 199, 256)).toEqual({ max_bytes: 8 * MB + PULL_HEADROOM_BYTES });
  });

  it("pull - nothing known (an empty WAL: the reader is live; or an unknown max_payload): by the caller's count", () => {
    expect(pullOptions(8 * MB, undefined, 256)).toEqual({ max_messages: 256 });
    expect(pullOptions(undefined, 140_000, 256)).toEqual({ max_messages: 256 });
  });

  it("pull - PX_UNSAFE_WAL_PULL_BY_MESSAGES=1 (the negative control of test/wal/pull.int.test.ts) pulls by messages whatever the size", () => {
    process.env.PX_UNSAFE_WAL_PULL_BY_MESSAGES = "1";
    expect(pullOptions(MB, 140_000, 256)).toEqual({ max_messages: 256 });
  });
});
