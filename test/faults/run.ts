// One chaos run: start the harness, ingest and read while the nemesis does a
// seeded schedule of faults, heal, wait until every acknowledged row is
// persisted, then let the checker read everything back. Used by the short
// suite (chaos.int.test.ts) and bench/chaos.ts.
import { randomBytes } from "node:crypto";
import { createToken } from "../../src/auth/index.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";
import { NodeQuerier } from "../helpers/nodequery.js";
import { WatermarkLog, walRows } from "../helpers/sink.js";
import { addReaderFindings, checkClickhouse, checkServed, clickhouseRows, emptyFindings, summarize, violations } from "./checker.js";
import type { Findings } from "./checker.js";
import { diskFullMode } from "./diskfull.js";
import { Harness } from "./harness.js";
import { describeSchedule, faultSchedule } from "./schedule.js";
import type { Fault, FaultKind } from "./schedule.js";
import { feedReader } from "./feedreader.js";
import { Ledger, Producer, TS_BASE, ingest, readers } from "./workload.js";
import type { IngestOptions } from "./workload.js";

export const CHAOS_TENANT = "chaos";

/** A table of uniquely numbered rows (see workload.ts); rows older than 1 s of data time leave RAM once persisted, so reads stitch ClickHouse and RAM. */
export function chaosSpec(tenant = CHAOS_TENANT, shards = 6): ClusterSpec {
  return parseClusterSpec({
    tenants: [{ name: tenant, tables: [{ name: "trades", shards, retention: { hotSeconds: 1 }, columns: [{ name: "rid", type: "float64" }, { name: "pk", type: "float64" }] }] }],
  });
}

export interface RunOptions {
  readonly seed: number;
  /** Faults in the schedule (at least the number of kinds to cover each once). */
  readonly faults: number;
  /** The kinds to draw from (default every kind). Without a network, clock or disk kind the harness runs without namespaces, libfaketime and small disks. */
  readonly kinds?: readonly FaultKind[];
  readonly nodeIds?: readonly string[];
  readonly ingest?: Partial<IngestOptions>;
  readonly log?: (line: string) => void;
}

export interface RunResult {
  readonly seed: number;
  readonly schedule: readonly Fault[];
  readonly injected: Readonly<Record<string, number>>;
  readonly ackedBatches: number;
  readonly ackedRows: number;
  readonly failedBatches: number;
  readonly clickhouseRows: number;
  readonly readerQueries: number;
  readonly readerErrors: number;
  /** The subscribing reader: rows received, subscriptions after the first. */
  readonly feedRows: number;
  readonly feedResubscribes: number;
  readonly watermarks: number;
  /** Watermarks of an older lease revision seen after a newer one (a fenced owner's, which readers refuse): counted, not violations. */
  readonly staleWatermarks: number;
  readonly findings: Findings;
  readonly seconds: number;
}

/** Fails with the seed and the schedule, so the run can be replayed. */
export function assertClean(r: RunResult): void {
  if (violations(r.findings) === 0) return;
  throw new Error(`chaos run with seed ${r.seed} found violations: ${summarize(r.findings)}\nschedule (replay: npm run bench:chaos -- --seed ${r.seed}):\n${describeSchedule(r.schedule)}`);
}

export async function chaosRun(o: RunOptions): Promise<RunResult> {
  try {
    return await runOnce(o);
  } catch (e) {
    const schedule = faultSchedule({ seed: o.seed, faults: o.faults, nodes: (o.nodeIds ?? ["n1", "n2", "n3"]).length, natsServers: 3, ...(o.kinds === undefined ? {} : { kinds: o.kinds }) });
    throw new Error(`chaos run with seed ${o.seed} failed: ${(e as Error).message}\nschedule (replay: npm run bench:chaos -- --seed ${o.seed}):\n${describeSchedule(schedule)}`, { cause: e });
  }
}

async function runOnce(o: RunOptions): Promise<RunResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const nodeIds = o.nodeIds ?? ["n1", "n2", "n3"];
  const spec = chaosSpec();
  const table: TableSpec = spec.tenants[0]!.tables[0]!;
  const schedule = faultSchedule({ seed: o.seed, faults: o.faults, nodes: nodeIds.length, natsServers: 3, ...(o.kinds === undefined ? {} : { kinds: o.kinds }) });
  log(`chaos: seed ${o.seed}\n${describeSchedule(schedule)}`);
  const uses = (...k: FaultKind[]): boolean => schedule.some((f) => k.includes(f.kind));
  const h = await Harness.start({ spec, nodeIds, log, network: uses("partition-node-nats", "partition-nats"), clocks: uses("clock-jump"), smallDisks: uses("nats-disk-full") && diskFullMode() === "enospc" });
  let stopFeed: (() => Promise<void>) | undefined;
  try {
    await h.waitSettled(90_000);
    const ledger = new Ledger();
    const wm = new WatermarkLog(h.nc, h.clickhouse.ch, CHAOS_TENANT, table);
    const token = await createToken(h.nc, { tenant: CHAOS_TENANT, role: "reader", replicas: 3 });
    const io: IngestOptions = { producers: 3, symbolsPerProducer: 8, rowsPerBatch: 200, pauseMs: 20, ...o.ingest };
    const pumping = ingest(h.nc, CHAOS_TENANT, table, ledger, io, `s${o.seed}-${randomBytes(3).toString("hex")}`);
    const running = (): { id: string; host: string; grpcPort: number }[] => h.runningNodes().map((id) => ({ id, host: h.nodes.get(id)!.host, grpcPort: h.nodes.get(id)!.grpcPort }));
    const reading = readers(running, token, table.name, ledger, Number(process.env.PX_CHAOS_READ_PAUSE_MS ?? 250));
    // Producer 1's symbols (a third of the rows): see feedreader.ts.
    const feed = feedReader(running, token, table.name, ledger, TS_BASE, new Producer(1, io.symbolsPerProducer).symbols);
    stopFeed = () => feed.stop();
    try {
      for (const f of schedule) {
        await new Promise((r) => setTimeout(r, f.afterMs));
        await h.inject(f);
      }
      // Some ingest after the last fault, on a healed cluster.
      await new Promise((r) => setTimeout(r, 2_000));
    } finally {
      await h.heal();
      await pumping.stop();
      await reading.stop();
    }
    log(`chaos: ${ledger.acks.length} batches acked, ${ledger.failed} failed; waiting for every shard and sink`);
    const findings = emptyFindings();
    addReaderFindings(reading.report, findings);
    const { clickhouseRows, watermarks, staleWatermarks } = await readBack(h, CHAOS_TENANT, table.name, ledger, token, wm, findings, log).finally(() => wm.close());
    // Long after the last append: replicas whose last sequences still differ have diverged (nats-server's, not ours).
    log(`chaos: after the read-back: ${await h.walReplicas()}`);
    // The subscribing reader must have got every acked row of its symbols, once, in order, whatever node it was on.
    const { gaps, behind } = await feed.drain(60_000);
    await feed.stop();
    const fr = feed.report;
    findings.lost.push(...gaps.slice(0, 1_000).map((r) => `feed: acked rid ${r} skipped (the feed covered its batch's WAL records)`));
    if (behind.length > 0) findings.stuck.push(`feed: ${behind.length} acked rows not delivered 60 s after the read-back (behind, not skipped; covered LSNs ${JSON.stringify([...fr.covered])})`);
    findings.duplicated.push(...fr.duplicated);
    findings.outOfOrder.push(...fr.outOfOrder);
    findings.corrupt.push(...fr.phantoms);
    log(`chaos: feed reader: ${fr.rows} rows in ${fr.updates} updates, ${fr.resubscribes} resubscriptions (${fr.ends.slice(0, 8).join("; ")}), ${gaps.length} acked rows skipped, ${behind.length} not yet delivered`);
    const acked = ledger.ackedRids().size;
    const result: RunResult = {
      seed: o.seed,
      schedule,
      injected: Object.fromEntries(h.injected),
      ackedBatches: ledger.acks.length,
      ackedRows: acked,
      failedBatches: ledger.failed,
      clickhouseRows,
      readerQueries: reading.report.queries,
      readerErrors: reading.report.errors,
      feedRows: fr.rows,
      feedResubscribes: fr.resubscribes,
      watermarks,
      staleWatermarks,
      findings,
      seconds: (performance.now() - t0) / 1000,
    };
    log(`chaos: seed ${o.seed}: ${result.ackedRows} acked rows, ${clickhouseRows} in ClickHouse, ${result.readerQueries} reads (${result.readerErrors} refused), ${watermarks} watermarks (${staleWatermarks} of a fenced owner); ${summarize(findings)} (${result.seconds.toFixed(1)} s)`);
    if (violations(findings) > 0) log(h.tails());
    return result;
  } finally {
    await stopFeed?.(); // however the run ends (a second stop() is harmless)
    await h.close();
  }
}

/**
 * After the faults: waits until every shard is live once (else a stuck
 * finding) and ClickHouse holds every acked row (bounded), then checks
 * ClickHouse, every node's complete answer and the watermarks `wm` saw
 * (the caller closes it); adds everything to `findings`.
 */
/** Whether, for every bucket of `table` with WAL records, a watermark at or past its last record was seen. */
async function watermarksCoverWal(h: Harness, tenant: string, table: string, wm: WatermarkLog): Promise<boolean> {
  const last = new Map<number, number>();
  for (const [lsn, r] of await walRows(h.nc, tenant, table)) last.set(r.bucket, Math.max(last.get(r.bucket) ?? 0, lsn));
  const persisted = new Map<number, number>();
  for (const w of wm.seen) persisted.set(w.bucket, Math.max(persisted.get(w.bucket) ?? 0, w.persistedLsn));
  return [...last].every(([b, l]) => (persisted.get(b) ?? 0) >= l);
}

export async function readBack(h: Harness, tenant: string, table: string, ledger: Ledger, token: string, wm: WatermarkLog, findings: Findings, log: (l: string) => void, persistTimeoutMs = 120_000): Promise<{ clickhouseRows: number; watermarks: number; staleWatermarks: number }> {
  // A shard that never comes back is a finding (S), not the end of the run: ClickHouse is still checked.
  const settled = await h.waitSettled(120_000).then(
    () => true,
    (e: unknown) => {
      findings.stuck.push((e as Error).message.split("\n").slice(0, 2).join(" | "));
      log((e as Error).message);
      return false;
    },
  );
  // Everything in the WAL must reach ClickHouse: wait (bounded) until the watermarks seen cover each bucket's last
  // WAL record (so a late duplicate is in ClickHouse when it is read) and ClickHouse has every acked row, then check.
  const deadline = Date.now() + persistTimeoutMs;
  while (!(await watermarksCoverWal(h, tenant, table, wm))) {
    if (Date.now() > deadline) {
      log(`checker: ${tenant}.${table}: the watermarks seen do not cover the WAL after ${persistTimeoutMs} ms; reading ClickHouse as it is`);
      break;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  let clickhouseRows: number;
  for (;;) {
    const f = emptyFindings();
    clickhouseRows = (await checkClickhouse(h.clickhouse.server.httpUrl, tenant, table, ledger, f)).rows;
    if (f.lost.length === 0 || Date.now() > deadline) {
      for (const k of Object.keys(f) as (keyof Findings)[]) findings[k].push(...f[k]);
      break;
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
  if (findings.lost.some((l) => l.startsWith("ClickHouse"))) log(await lostDiagnosis(h, tenant, table, ledger, wm, findings));
  // Every node's complete answer (RAM and ClickHouse stitched) holds every acked row once, in order.
  for (const id of settled ? h.runningNodes() : []) {
    const q = new NodeQuerier(h.nodes.get(id)!.grpcPort, token, h.nodes.get(id)!.host);
    try {
      // A complete read after the last acked LSN waits (5 s) for the shards to apply it: under load they may
      // need longer, so it is asked again for up to 60 s; a node that never answers is unavailable (S), not a loss.
      const ask = () => q.query({ op: "range", table, columns: ["rid"], consistency: "complete", minLsn: ledger.maxLsn() });
      let a = await ask();
      for (const until = Date.now() + 60_000; a.error && Date.now() < until; a = await ask()) await new Promise((r) => setTimeout(r, 1_000));
      if (a.error) findings.stuck.push(`node ${id}: no complete answer in 60 s: ${a.error.details}`);
      else checkServed(`node ${id}`, a.rows, ledger, findings);
    } finally {
      q.close();
    }
  }
  const w = await wm.check(h.nc, tenant, table);
  findings.watermark.push(...w.decreased.map((s) => `decreased: ${s}`), ...w.ahead.map((s) => `ahead: ${s}`));
  if (w.stale.length > 0) log(`checker: ${w.stale.length} watermarks of a fenced owner (older lease revision after a newer one; readers refuse them): ${w.stale.slice(0, 5).join("; ")}`);
  return { clickhouseRows, watermarks: w.watermarks, staleWatermarks: w.stale.length };
}

/** For a report: where the acked rows ClickHouse lacks are (their acks' LSNs, the WAL's records, ClickHouse by LSN, the highest watermark per bucket). */
async function lostDiagnosis(h: Harness, tenant: string, table: string, ledger: Ledger, wm: WatermarkLog, findings: Findings): Promise<string> {
  const lost = new Set(findings.lost.filter((l) => l.startsWith("ClickHouse")).map((l) => Number(/rid (\d+)/.exec(l)![1])));
  const acks = ledger.acks.filter((a) => a.rids.some((r) => lost.has(r)));
  const lsns = [...new Set(acks.flatMap((a) => a.lsns))];
  const wal = await walRows(h.nc, tenant, table);
  const inCh = await clickhouseRows(h.clickhouse.server.httpUrl, `SELECT _lsn, _shard, count() FROM ${qualifiedTable(tenant, table)} WHERE _lsn IN (${lsns.join(",")}) GROUP BY _lsn, _shard ORDER BY _lsn`);
  const maxP = new Map<number, number>();
  for (const w of wm.seen) maxP.set(w.bucket, Math.max(maxP.get(w.bucket) ?? 0, w.persistedLsn));
  return [
    `checker: ${lost.size} acked rows missing from ClickHouse, of ${acks.length} acks:`,
    ...acks.map((a) => `  ${a.producerId} seq ${a.seq}: LSNs ${a.lsns.join(",")}, ${a.rids.filter((r) => lost.has(r)).length} of ${a.rids.length} rows missing`),
    `  WAL records at those LSNs: ${lsns.map((l) => `${l}=${wal.has(l) ? `bucket ${wal.get(l)!.bucket}, ${wal.get(l)!.rows} rows` : "absent"}`).join("; ")}`,
    `  ClickHouse rows at those LSNs: ${inCh.map(([l, b, n]) => `${l} (shard ${b}): ${n}`).join("; ") || "none"}`,
    `  highest watermark seen per bucket: ${[...maxP].sort((x, y) => x[0] - y[0]).map(([b, p]) => `${b}:${p}`).join(", ")}`,
    ...(await laggingSinks(h, tenant, table, wal, maxP)),
  ].join("\n");
}

/**
 * For each bucket whose highest watermark is behind its last WAL record: every
 * node's view of the shard and its sink (/v1/shards) and the node's log lines
 * about that shard or sink (the first error of a run is logged once, long
 * before the tails a failure prints).
 */
async function laggingSinks(h: Harness, tenant: string, table: string, wal: Map<number, { bucket: number }>, maxP: Map<number, number>): Promise<string[]> {
  const last = new Map<number, number>();
  for (const [lsn, r] of wal) last.set(r.bucket, Math.max(last.get(r.bucket) ?? 0, lsn));
  const out: string[] = [];
  for (const [b, l] of [...last].sort((x, y) => x[0] - y[0])) {
    if ((maxP.get(b) ?? 0) >= l) continue;
    out.push(`  bucket ${b}: highest watermark ${maxP.get(b) ?? 0}, last WAL record ${l}`);
    for (const [id, p] of h.nodes) {
      const views = await fetch(`http://${p.host}:${p.httpPort}/v1/shards`, { signal: AbortSignal.timeout(3_000) }).then(
        async (r) => ((await r.json()) as { tenant: string; table: string; bucket: number }[]).filter((v) => v.tenant === tenant && v.table === table && v.bucket === b),
        () => [],
      );
      if (views.length > 0) out.push(`    ${id} /v1/shards: ${JSON.stringify(views)}`);
      const lines = p
        .output()
        .split("\n")
        .filter((x) => x.includes(`${tenant}/${table}/${b}:`) || x.includes(`${tenant}.${table}.${b}`));
      out.push(...lines.slice(-40).map((x) => `    ${id}: ${x.slice(0, 600)}`));
    }
  }
  return out;
}
