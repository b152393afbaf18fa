// EXPLAIN's plan: per table, the one ClickHouse statement's WHERE; per shard,
// the hot part (ts >= H or LSN > P) and its own condition under the seam rule,
// or another node when not hosted here.
import { describe, expect, it } from "vitest";
import { parseTableSpec } from "../../protocols/tablespec.js";
import { explainPlan } from "../../src/node/httpapi/explain.js";
import { compileSql } from "../../src/sql/index.js";

const spec = parseTableSpec({ name: "trades", shards: 3, columns: [{ name: "price", type: "float64" }] });
const catalog = new Map([["desk", new Map([["trades", spec]])]]);
const H = 1_704_205_800_000_000;
const hosted = (bucket: number, persistedLsn: number, horizonMicros: number) => ({ shard: { tenant: "desk", table: "trades", bucket }, runtime: { state: "live", stats: { rows: 10, persistedLsn, horizonMicros } } });
const shards = { all: () => [hosted(0, 40, H), hosted(1, 0, 0)] };

describe("explain - plan", () => {
  it("explain - hot and cold parts per shard, with the pushed-down seam WHERE; a shard elsewhere is named", () => {
    const { query } = compileSql(`SELECT * FROM trades WHERE sym IN ('A') AND ts >= ${H - 5} AND ts < ${H + 5}`);
    const plan = explainPlan("desk", query, catalog, shards, true) as { op: string; tables: { shards: number; clickhouse: string | null; parts: Record<string, unknown>[] }[] };
    expect(plan.op).toBe("range");
    // Only shard 0 reaches below its horizon: the statement is its condition alone.
    expect(plan.tables[0]!.clickhouse).toBe(`SELECT ... FROM \`px_desk\`.\`trades\` WHERE \`ts\` >= ${H - 5} AND (\`_shard\` = 0 AND \`_lsn\` <= 40 AND \`ts\` < ${H} AND \`sym\` IN ('A'))`);
    const [p0, p1, p2] = plan.tables[0]!.parts;
    expect(p0).toMatchObject({ bucket: 0, where: "this node", persistedLsn: 40, horizonMicros: H, hot: `rows with ts in [${H}, ${H + 5}) or LSN > 40` });
    expect(p0!.clickhouse).toBe(`\`ts\` >= ${H - 5} AND (\`_shard\` = 0 AND \`_lsn\` <= 40 AND \`ts\` < ${H} AND \`sym\` IN ('A'))`);
    // Nothing evicted yet (H = 0): everything is hot, nothing is asked of ClickHouse.
    expect(p1).toMatchObject({ bucket: 1, clickhouse: null });
    expect(p2).toEqual({ bucket: 2, where: "another node (the query fans out to the shard's owner)" });
  });

  it("explain - shards of one table below their horizons share one statement, each with its own P and H", () => {
    const two = { all: () => [hosted(0, 40, H), hosted(1, 7, H - 2)] };
    const plan = explainPlan("desk", { op: "range", table: "trades", t0: H - 5, t1: H + 5 }, catalog, two, true) as { tables: { clickhouse: string }[] };
    expect(plan.tables[0]!.clickhouse).toBe(`SELECT ... FROM \`px_desk\`.\`trades\` WHERE \`ts\` >= ${H - 5} AND ((\`_shard\` = 0 AND \`_lsn\` <= 40 AND \`ts\` < ${H}) OR (\`_shard\` = 1 AND \`_lsn\` <= 7 AND \`ts\` < ${H - 2}))`);
  });

  it("explain - without ClickHouse the plan says so and has no cold part", () => {
    const plan = explainPlan("desk", { op: "lastBy", table: "trades" }, catalog, shards, false) as { note: string; tables: { parts: { clickhouse?: unknown }[] }[] };
    expect(plan.note).toMatch(/no ClickHouse/);
    expect(plan.tables[0]!.parts.slice(0, 2).every((p) => p.clickhouse === null)).toBe(true);
  });
});
