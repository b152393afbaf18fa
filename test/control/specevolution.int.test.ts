// Spec evolution against real servers: a node ingests continuously while
// `pxctl apply` (px.ctl.apply) adds a column with a default. Every shard stays
// live (it restarts on the new spec), rows written before the change read as
// the default in RAM and in ClickHouse, rows after it carry their values,
// ClickHouse holds every row exactly once by (_lsn, _row). A refused change
// (a retype) leaves the catalog, the running shards and the data as they were.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture, exactlyOnceReport, shardViews, waitPersisted } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { readWal } from "../helpers/wal.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { describeTable, qualifiedTable } from "../../src/clickhouse/index.js";
import { controlRequest } from "../../src/control/index.js";
import type { ApplyReply } from "../../src/control/index.js";
import { parseClusterSpec, specAtVersion } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { parseWalSubject } from "../../protocols/subjects.js";
import type { ProxistNode } from "../../src/node/node.js";

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode | undefined;

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
});
afterAll(async () => {
  await node?.stop();
  await f?.close();
  await chf?.close();
});

const TENANT = "evo";
const DEFAULT_VENUE = 7;
const columnsV1 = [
  { name: "price", type: "float64" },
  { name: "size", type: "float64" },
];
const fileV1 = { tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 3, columns: columnsV1 }] }] };
const fileV2 = { tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 3, version: 2, columns: [...columnsV1, { name: "venue", type: "int32", default: DEFAULT_VENUE }] }] }] };
const retyped = { tenants: [{ name: TENANT, tables: [{ name: "trades", shards: 3, version: 2, columns: [columnsV1[0], { name: "size", type: "int64" }, { name: "venue", type: "int32", default: DEFAULT_VENUE }] }] }] };

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const venueOf = (batchNo: number, row: number): number => 100 + ((batchNo * 31 + row) % 1000);

/** Venue of every WAL row by `lsn:row` as the table spec says it reads: the default for version-1 records. */
async function walOracle(spec: TableSpec): Promise<{ venues: Map<string, number>; versions: Map<number, number> }> {
  const venues = new Map<string, number>();
  const versions = new Map<number, number>();
  for (const r of await readWal(f.nc, TENANT)) {
    if (parseWalSubject(r.subject)?.table !== spec.name) continue;
    const v = r.record.schemaVersion;
    versions.set(v, (versions.get(v) ?? 0) + 1);
    const b = decodeTickBatch(specAtVersion(spec, v), r.record.payload, "test");
    for (let i = 0; i < b.rows; i++) venues.set(`${r.lsn}:${i}`, v === 1 ? DEFAULT_VENUE : b.values[2]![i]!);
  }
  return { venues, versions };
}

describe("spec evolution during ingest", () => {
  it("spec evolution - apply adds a column with a default mid-ingest: shards stay live, old rows read the default, new rows their values, ClickHouse has the column and every row once; a refused retype changes nothing", async () => {
    const logs: string[] = [];
    node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, snapshotIntervalMs: 300, log: (l) => logs.push(l) }, parseClusterSpec(fileV1));
    // The standalone node answers px.ctl.apply itself, as pxctl would reach it.
    const walk = new RandomWalk(symbolNames(40), 5, 1.75e15);

    // Continuous ingest: version 1 batches until the node serves version 2, then batches with venue.
    let stop = false;
    let acked = 0;
    let rejected = 0;
    const ingest = (async () => {
      let served = node!.catalog().get(TENANT)!.get("trades")!;
      const old = new TickPublisher(f.nc, { tenant: TENANT, spec: served, maxInFlight: 2 });
      let pub = old;
      let no = 0;
      while (!stop) {
        const current = node!.catalog().get(TENANT)!.get("trades")!;
        if (current.version !== served.version) {
          served = current;
          pub = new TickPublisher(f.nc, { tenant: TENANT, spec: served, maxInFlight: 2, producerId: `v${served.version}` });
        }
        const b = walk.trades(200, 200_000);
        // A writer that predates the change keeps sending batches without venue (every 3rd batch): they read as the default.
        const oldShape = served.version === 1 || no % 3 === 0;
        // Never the default, so a row read at the default is one written without venue.
        const batch = oldShape ? b : { ...b, values: [...b.values, Int32Array.from({ length: b.rows }, (_, i) => venueOf(no, i))] };
        no++;
        try {
          await (oldShape ? old : pub).publish(batch);
          acked += b.rows;
        } catch {
          rejected++;
        }
        await sleep(20);
      }
    })();

    // Shard states all along: restarting on the new spec replays, it never fails.
    const states = new Set<string>();
    const watch = (async () => {
      while (!stop) {
        for (const v of await shardViews(node!.httpPort, TENANT).catch(() => [])) states.add(`${v.bucket}:${v.state}`);
        await sleep(100);
      }
    })();

    await sleep(1_500);
    const dry = await controlRequest<ApplyReply>(f.nc, "apply", { spec: fileV2, dryRun: true });
    expect(dry.applied).toBe(false);
    const applied = await controlRequest<ApplyReply>(f.nc, "apply", { spec: fileV2 });
    expect(applied.applied).toBe(true);
    const deadline = Date.now() + 20_000;
    while (node.catalog().get(TENANT)!.get("trades")!.version !== 2 && Date.now() < deadline) await sleep(50);
    expect(node.catalog().get(TENANT)!.get("trades")!.columns.at(-1)).toMatchObject({ name: "venue", default: DEFAULT_VENUE, since: 2 });
    await sleep(2_000);

    // A refused change, mid-ingest: dry run and apply both say what and how, nothing moves.
    const before = node.shards.all().map((h) => h.runtime);
    const revisionBefore = (await node.store.snapshot()).tenants.get(TENANT)!.revision;
    for (const dryRun of [true, false]) {
      await expect(controlRequest(f.nc, "apply", { spec: retyped, dryRun })).rejects.toMatchObject({
        code: "INVALID_ARGUMENT",
        message: expect.stringMatching(/tenant evo table trades: retyping column size from float64 to int64 is refused \(create a new table/),
      });
    }
    await sleep(1_000);
    stop = true;
    await Promise.all([ingest, watch]);
    expect([...states].filter((s) => /fail|stop/.test(s))).toEqual([]);

    const stored = (await node.store.snapshot()).tenants.get(TENANT)!;
    expect(stored.revision).toBe(revisionBefore);
    const v2 = stored.spec.tables[0]!;
    expect(v2.version).toBe(2);
    expect(v2.columns.map((c) => `${c.name}:${c.type}`)).toEqual(["price:float64", "size:float64", "venue:int32"]);
    expect(node.shards.all().map((h) => h.runtime)).toEqual(before); // the same runtimes: not restarted by the refused apply

    // Every shard live and persisted up to its last record.
    await waitPersisted(node.httpPort, f.nc, TENANT, "trades", 90_000);
    const views = await shardViews(node.httpPort, TENANT);
    expect(views.map((v) => v.state.replace("running.snapshotting", "running.live"))).toEqual(["running.live", "running.live", "running.live"]);

    const { venues, versions } = await walOracle(v2);
    expect(versions.get(1) ?? 0).toBeGreaterThan(0);
    expect(versions.get(2) ?? 0).toBeGreaterThan(0);
    expect(venues.size).toBe(acked);
    expect([...venues.values()].filter((v) => v !== DEFAULT_VENUE).length).toBeGreaterThan(0);

    // RAM: every row of the WAL, old rows at the default, new rows with their venue.
    let ram = 0;
    for (let bucket = 0; bucket < 3; bucket++) {
      const rows = node.shards.get({ tenant: TENANT, table: "trades", bucket })!.runtime.table.toTickBatch();
      for (let i = 0; i < rows.batch.rows; i++) {
        const key = `${rows.lsn[i]}:${rows.rowInRecord[i]}`;
        expect(rows.batch.values[2]![i], `venue of ${key} in RAM`).toBe(venues.get(key));
      }
      ram += rows.batch.rows;
    }
    expect(ram).toBe(acked);

    // ClickHouse: the column exists, each row once, with the same venues.
    expect((await describeTable(chf.ch, TENANT, "trades")).get("venue")).toBe("Int32");
    expect(await exactlyOnceReport(chf.ch, f.nc, TENANT, v2)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0, walRows: acked });
    const text = await chf.ch.query(`SELECT _lsn, _row, venue FROM ${qualifiedTable(TENANT, "trades")} FORMAT TabSeparated`);
    let wrong = 0;
    let checked = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const [lsn, row, venue] = line.split("\t").map(Number);
      checked++;
      if (venues.get(`${lsn}:${row}`) !== venue) wrong++;
    }
    expect(checked).toBe(acked);
    expect(wrong).toBe(0);
    expect(rejected).toBe(0);
    // Each shard restarted once on the new spec and resumed from its version-1 snapshot (not a full replay).
    expect(logs.filter((l) => /table spec changed \(version 2\); restarting/.test(l))).toHaveLength(3);
    expect(logs.filter((l) => /snapshot .* is unusable/.test(l))).toEqual([]);
    console.log(`spec evolution: ${acked} rows acked; states seen ${[...states].sort().join(", ")}`);
  });
});
