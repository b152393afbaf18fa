// Feeds hold the WAL for compaction: each running feed needs every record of
// its tables after its last checkpoint (after the last it folded when it saves
// none); a failed feed holds nothing.
import { describe, expect, it } from "vitest";
import { planFeed } from "../../src/feed/index.js";
import type { FeedPlan } from "../../src/feed/index.js";
import { feedHolds } from "../../src/node/feed/host.js";
import { TENANT, workload } from "../query/fixture.js";

const w = workload(3, { records: 4, symbols: 4, rowsPerRecord: 10 });
const plan = (query: Record<string, unknown>): FeedPlan => planFeed(TENANT, { query }, (t) => w.specs.find((s) => s.name === t), () => ["trades", "quotes"]);

describe("feed holds", () => {
  it("holds - a feed holds its tables from its checkpoint's LSN + 1 (without checkpoints its folded LSN + 1); recovering holds all; failed and other tables hold nothing", () => {
    const bars = plan({ op: "bars", table: "trades", bucket: "1s" });
    const asof = plan({ op: "asof", table: "trades", right: { table: "quotes", columns: ["bid"] } });
    const feeds = [
      { plan: bars, failed: false, foldedLsn: 41, checkpointing: false, checkpointLsn: 0 },
      { plan: asof, failed: false, foldedLsn: 0, checkpointing: true, checkpointLsn: 0 },
      { plan: bars, failed: true, foldedLsn: 7, checkpointing: true, checkpointLsn: 5 },
      { plan: bars, failed: false, foldedLsn: 90, checkpointing: true, checkpointLsn: 60 },
    ];
    expect(feedHolds(feeds, TENANT, "trades")).toEqual([42, 1, 61]);
    expect(feedHolds(feeds, TENANT, "quotes")).toEqual([1]);
    expect(feedHolds(feeds, "other", "trades")).toEqual([]);
  });
});
