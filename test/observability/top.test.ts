// pxctl top's pieces: the exposition reader (escaped label values, +Inf) and
// the view between two scrapes (rates, a histogram's p99 of the new observations).
import { describe, expect, it } from "vitest";
import { bucketQuantile, parsePromText } from "../../src/cli/promtext.js";
import { topText, topView } from "../../src/cli/top.js";

const scrape = (applied: number, ticks: number, fast: number, all: number) =>
  parsePromText(`# HELP px_shard_rows Rows
# TYPE px_shard_rows gauge
px_shard_rows{tenant="t",table="trades",bucket="0"} 500
px_shard_state{tenant="t",table="trades",bucket="0",state="running.live"} 1
px_shard_state{tenant="t",table="trades",bucket="0",state="failed"} 0
px_shard_applied_records_total{tenant="t",table="trades",bucket="0"} ${applied}
px_ingest_rows_accepted_total ${ticks}
px_ingest_ack_seconds_bucket{tenant="t",table="trades",le="0.001"} ${fast}
px_ingest_ack_seconds_bucket{tenant="t",table="trades",le="0.01"} ${all}
px_ingest_ack_seconds_bucket{tenant="t",table="trades",le="+Inf"} ${all}
px_node_info{node_id="a \\"quoted\\" \\\\ id\\nx"} 1
`);

describe("pxctl top", () => {
  it("top - the exposition reader unescapes label values and reads +Inf", () => {
    const s = scrape(1, 1, 1, 1);
    expect(s.find((x) => x.name === "px_node_info")!.labels.node_id).toBe('a "quoted" \\ id\nx');
    expect(s.filter((x) => x.labels.le === "+Inf")).toHaveLength(1);
    expect(bucketQuantile(0.5, [[1, 10], [2, 20], [Infinity, 20]])).toBe(1);
  });

  it("top - rates and p99 come from the difference of two scrapes", () => {
    const v = topView([{ url: "http://n1/metrics", prev: scrape(100, 1000, 10, 10), cur: scrape(300, 5000, 10, 20) }], 2);
    expect(v.nodes[0]).toMatchObject({ ingestTicksPerS: 2000 });
    // The 10 new acks all fell in (1 ms, 10 ms]: p99 interpolates inside that bucket.
    expect(v.nodes[0]!.ackP99Ms!).toBeGreaterThan(1);
    expect(v.nodes[0]!.ackP99Ms!).toBeLessThanOrEqual(10);
    expect(v.shards).toEqual([expect.objectContaining({ shard: "t/trades/0", state: "running.live", rows: 500, appliedPerS: 100 })]);
    expect(topText(v)).toMatch(/t\/trades\/0\s+running\.live\s+500/);
  });
});
