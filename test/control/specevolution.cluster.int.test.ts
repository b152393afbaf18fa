// Spec evolution on a cluster: 3 node processes (--shards assigned) on a
// 3-server NATS cluster with ClickHouse, shards placed by the control plane,
// ingest going on while `pxctl apply` (px.ctl.apply, answered by the control
// plane) adds an int32 column with a default. Every shard stays live on its
// node, rows written before the change read as the default and later rows
// their values, in ClickHouse and through every node's queries (a node that
// does not own a shard reads it through fan-out parts); every row lands once.
// A refused retype leaves the stored spec as it was. (This test found the
// part codec padding a 4-byte column between symbols.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseClusterSpec, specAtVersion } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { parseWalSubject } from "../../protocols/subjects.js";
import { createToken } from "../../src/auth/index.js";
import { describeTable, qualifiedTable } from "../../src/clickhouse/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { controlRequest } from "../../src/control/index.js";
import type { ApplyReply } from "../../src/control/index.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { isLive, proxistCluster, waitEachShardLiveOnce, waitPersistedOn, waitSpread } from "../helpers/nodecluster.js";
import type { ProxistCluster } from "../helpers/nodecluster.js";
import { NodeQuerier } from "../helpers/nodequery.js";
import { exactlyOnceReport } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";

const TENANT = "evc";
const DEFAULT_VENUE = 7;
const IDS = ["n1", "n2", "n3"];
const columnsV1 = [
  { name: "price", type: "float64" },
  { name: "size", type: "float64" },
];
const table = (version: number, columns: readonly object[]) => ({ tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 6, version, columns }] }] });
const fileV1 = table(1, columnsV1);
const fileV2 = table(2, [...columnsV1, { name: "venue", type: "int32", default: DEFAULT_VENUE }]);
const retyped = table(2, [columnsV1[0]!, { name: "size", type: "int64" }, { name: "venue", type: "int32", default: DEFAULT_VENUE }]);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const venueOf = (batchNo: number, row: number): number => 100 + ((batchNo * 31 + row) % 1000);

let c: ProxistCluster;

beforeAll(async () => {
  c = await proxistCluster(parseClusterSpec(fileV1), {}, [], { clickhouse: true });
  await c.spawn(IDS);
  await waitSpread(c, IDS, 90_000);
}, 240_000);

afterAll(async () => {
  await c?.close();
});

/** The stored spec of the table. */
async function storedSpec(): Promise<{ spec: TableSpec; revision: number }> {
  const t = (await c.metadata.snapshot()).tenants.get(TENANT)!;
  return { spec: t.spec.tables[0]!, revision: t.revision };
}

/** Venue of every WAL row by `lsn:row`, as the spec reads it: the default for version-1 records. */
async function walVenues(spec: TableSpec): Promise<{ venues: Map<string, number>; rows: string[]; versions: Map<number, number> }> {
  const venues = new Map<string, number>();
  const rows: string[] = [];
  const versions = new Map<number, number>();
  for (const r of await readWal(c.nc, TENANT)) {
    if (parseWalSubject(r.subject)?.table !== spec.name) continue;
    const v = r.record.schemaVersion;
    versions.set(v, (versions.get(v) ?? 0) + 1);
    const b = decodeTickBatch(specAtVersion(spec, v), r.record.payload, "test");
    for (let i = 0; i < b.rows; i++) {
      const venue = v === 1 ? DEFAULT_VENUE : b.values[2]![i]!;
      venues.set(`${r.lsn}:${i}`, venue);
      rows.push(`${b.symbols[b.symbolIndex[i]!]!}|${b.ts[i]!}|${venue}`);
    }
  }
  return { venues, rows: rows.sort(), versions };
}

describe("spec evolution on a cluster", () => {
  it("spec evolution - apply adds a column mid-ingest on 3 node processes: shards stay live where they are, old rows read the default, new rows their values on every node and in ClickHouse, each row once; a refused retype changes nothing", async () => {
    const v1 = (await storedSpec()).spec;
    const walk = new RandomWalk(symbolNames(60), 9, 1.75e15);
    const old = new TickPublisher(c.nc, { tenant: TENANT, spec: v1, maxInFlight: 2, timeoutMs: 5_000 });
    // Set once the nodes serve version 2 (read by the ingest loop).
    const writers: { v2?: TickPublisher } = {};
    let stop = false;
    let acked = 0;
    let ackedWithVenue = 0;
    const ingest = (async () => {
      for (let no = 0; !stop; no++) {
        const b = walk.trades(200, 200_000);
        // After the change a writer that predates it keeps sending batches without venue (every 3rd one).
        const withVenue = writers.v2 !== undefined && no % 3 !== 0;
        const batch = withVenue ? { ...b, values: [...b.values, Int32Array.from({ length: b.rows }, (_, i) => venueOf(no, i))] } : b;
        try {
          await (withVenue ? writers.v2! : old).publish(batch);
          acked += b.rows;
          if (withVenue) ackedWithVenue += b.rows;
        } catch {
          // A refused batch is not acked and not counted; the checks below count acked rows only.
        }
        await sleep(20);
      }
    })();
    const placedBefore = new Map([...(await c.liveShards(IDS))].map(([k, o]) => [k, o[0]![0]]));

    await sleep(1_500);
    expect((await controlRequest<ApplyReply>(c.nc, "apply", { spec: fileV2, dryRun: true })).applied).toBe(false);
    expect((await controlRequest<ApplyReply>(c.nc, "apply", { spec: fileV2 })).applied).toBe(true);
    const v2 = (await storedSpec()).spec;
    expect(v2.columns.at(-1)).toMatchObject({ name: "venue", default: DEFAULT_VENUE, since: 2 });
    // The nodes' catalogs follow px_config within moments; then a writer of the new shape starts.
    await sleep(3_000);
    writers.v2 = new TickPublisher(c.nc, { tenant: TENANT, spec: v2, maxInFlight: 2, timeoutMs: 5_000, producerId: "v2-writer" });
    await sleep(3_000);

    const revisionBefore = (await storedSpec()).revision;
    for (const dryRun of [true, false]) {
      await expect(controlRequest(c.nc, "apply", { spec: retyped, dryRun })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/retyping column size from float64 to int64 is refused/),
      });
    }
    await sleep(1_000);
    stop = true;
    await ingest;
    expect((await storedSpec()).revision).toBe(revisionBefore);
    expect(ackedWithVenue).toBeGreaterThan(0);

    // Every shard live exactly once, on the node that held it before (a spec change moves nothing), and persisted.
    const after = await waitEachShardLiveOnce(c, IDS, 60_000);
    for (const [k, owners] of after) {
      expect(isLive(owners[0]![1])).toBe(true);
      expect({ shard: k, node: owners[0]![0] }).toEqual({ shard: k, node: placedBefore.get(k) });
    }
    await waitPersistedOn(c, TENANT, "trades", IDS, 120_000);

    const { venues, rows, versions } = await walVenues(v2);
    expect(versions.get(1) ?? 0).toBeGreaterThan(0);
    expect(versions.get(2) ?? 0).toBeGreaterThan(0);
    expect(venues.size).toBe(acked);

    // ClickHouse: the column, each row once, each row's venue as the WAL says.
    const ch = c.clickhouse!.ch;
    expect((await describeTable(ch, TENANT, "trades")).get("venue")).toBe("Int32");
    expect(await exactlyOnceReport(ch, c.nc, TENANT, v2)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0, walRows: acked });
    let wrong = 0;
    for (const line of (await ch.query(`SELECT _lsn, _row, venue FROM ${qualifiedTable(TENANT, "trades")} FORMAT TabSeparated`)).split("\n")) {
      if (line === "") continue;
      const [lsn, row, venue] = line.split("\t").map(Number);
      if (venues.get(`${lsn}:${row}`) !== venue) wrong++;
    }
    expect(wrong).toBe(0);

    // Every node answers for every shard with the same rows (hot and cold stitched), complete.
    const token = await createToken(c.nc, { tenant: TENANT, role: "reader", replicas: 3 });
    for (const id of IDS) {
      const q = new NodeQuerier(c.nodes.get(id)!.grpcPort, token);
      try {
        const a = await q.query({ op: "range", table: "trades", columns: ["venue"], tsType: "int64" });
        expect(a.error).toBeUndefined();
        expect({ node: id, complete: a.complete, rows: a.rows.length }).toEqual({ node: id, complete: true, rows: acked });
        // Row by row (symbol, ts, venue): a column shifted between symbols in a fan-out part shows here.
        const got = a.rows.map((r) => `${String(r[0])}|${String(r[1])}|${String(r[2])}`).sort();
        expect({ node: id, differing: got.filter((x, i) => x !== rows[i]).length }).toEqual({ node: id, differing: 0 });
      } finally {
        q.close();
      }
    }
  }, 300_000);
});
