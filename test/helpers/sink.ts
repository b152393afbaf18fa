// Integration-test helpers of the ClickHouse sink: a real clickhouse-server per
// test file, the exactly-once check of ClickHouse against the WAL (counted by
// (_lsn, _row)), a log of every watermark with what ClickHouse held when it
// arrived, and waits for the sinks to catch up.
import type { ShardStatus } from "../../protocols/shardstatus.js";
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeWatermark } from "../../protocols/codec.js";
import { parseWalSubject, watermarkSubjectsOfTenant } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { ClickhouseHttp, qualifiedTable } from "../../src/clickhouse/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { readWal } from "./wal.js";

export interface ClickhouseFixture {
  readonly server: ClickhouseServer;
  readonly ch: ClickhouseHttp;
  close(): Promise<void>;
}

export async function clickhouseFixture(): Promise<ClickhouseFixture> {
  const server = await startClickhouseServer();
  const ch = new ClickhouseHttp({ url: server.httpUrl, requestTimeoutMs: 30_000 });
  return {
    server,
    ch,
    close: async () => {
      ch.close();
      await server.dispose();
    },
  };
}

/** Rows of each WAL record of a table, by LSN, with its bucket. */
export async function walRows(nc: NatsConnection, tenant: string, table: string): Promise<Map<number, { bucket: number; rows: number }>> {
  const out = new Map<number, { bucket: number; rows: number }>();
  for (const r of await readWal(nc, tenant)) {
    const a = parseWalSubject(r.subject);
    if (a?.table === table) out.set(r.lsn, { bucket: a.bucket, rows: r.record.rows });
  }
  return out;
}

export interface ExactlyOnceReport {
  readonly walRecords: number;
  readonly walRows: number;
  /** Rows in ClickHouse (with repeats). */
  readonly clickhouseRows: number;
  /** Extra copies of (_lsn, _row) pairs. */
  readonly duplicates: number;
  /** WAL rows not in ClickHouse. */
  readonly missing: number;
  /** Rows in ClickHouse that no WAL record has (wrong _lsn, _row or _shard). */
  readonly unexpected: number;
}

/** Compares the table in ClickHouse with the WAL, counting by (_lsn, _row). */
export async function exactlyOnceReport(ch: ClickhouseHttp, nc: NatsConnection, tenant: string, spec: TableSpec): Promise<ExactlyOnceReport> {
  const wal = await walRows(nc, tenant, spec.name);
  const text = await ch.query(`SELECT _lsn, _shard, count(), uniqExact(_row), max(_row) FROM ${qualifiedTable(tenant, spec.name)} GROUP BY _lsn, _shard FORMAT TabSeparated`);
  let clickhouseRows = 0;
  let duplicates = 0;
  let missing = 0;
  let unexpected = 0;
  const seen = new Set<number>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [lsn, shard, count, distinct, maxRow] = line.split("\t").map(Number) as [number, number, number, number, number];
    clickhouseRows += count;
    duplicates += count - distinct;
    const w = wal.get(lsn);
    if (w === undefined || w.bucket !== shard || maxRow >= w.rows) {
      unexpected += distinct;
      continue;
    }
    seen.add(lsn);
    missing += w.rows - distinct;
  }
  let walRowsTotal = 0;
  for (const [lsn, w] of wal) {
    walRowsTotal += w.rows;
    if (!seen.has(lsn)) missing += w.rows;
  }
  return { walRecords: wal.size, walRows: walRowsTotal, clickhouseRows, duplicates, missing, unexpected };
}

export interface ObservedWatermark {
  readonly bucket: number;
  readonly persistedLsn: number;
  readonly leaseRevision: number;
  /** Rows of the bucket with _lsn <= P in ClickHouse right after the watermark arrived. */
  readonly clickhouseRowsUpToP: Promise<number>;
}

/**
 * Records every watermark of a table and, for each, asks ClickHouse at once
 * how many rows of the shard up to P it holds: a sink that announced P before
 * ClickHouse had everything up to P is caught by `checkWatermarks`.
 */
export class WatermarkLog {
  readonly seen: ObservedWatermark[] = [];
  private readonly sub: Subscription;

  constructor(nc: NatsConnection, ch: ClickhouseHttp, tenant: string, spec: TableSpec) {
    this.sub = nc.subscribe(watermarkSubjectsOfTenant(tenant), {
      callback: (err, m) => {
        if (err) return;
        const w = decodeWatermark(m.data);
        if (w.table !== spec.name) return;
        const bucket = w.bucket;
        const p = Number(w.persistedLsn);
        const count = ch
          .query(`SELECT count() FROM ${qualifiedTable(tenant, spec.name)} WHERE _shard = ${bucket} AND _lsn <= ${p} FORMAT TabSeparated`)
          .then((t) => Number(t.trim()), () => -1);
        this.seen.push({ bucket, persistedLsn: p, leaseRevision: Number(w.leaseRevision), clickhouseRowsUpToP: count });
      },
    });
  }

  close(): void {
    this.sub.unsubscribe();
  }

  /**
   * Per bucket: P values that went backwards, and watermarks whose P
   * ClickHouse did not fully hold. As readers do (src/sink/lease.ts's
   * WatermarkFence), the highest lease revision seen wins: a watermark of an
   * older revision arriving after it is a stale owner's (e.g. one published
   * before a partition and delivered after it), refused by readers: listed in
   * `stale`, not judged as a decrease. A decrease within the accepted ones
   * (same or newer revision) is a violation.
   */
  async check(nc: NatsConnection, tenant: string, table: string): Promise<{ watermarks: number; decreased: string[]; ahead: string[]; stale: string[] }> {
    const wal = await walRows(nc, tenant, table);
    const last = new Map<number, { p: number; rev: number }>();
    const decreased: string[] = [];
    const ahead: string[] = [];
    const stale: string[] = [];
    for (const w of this.seen) {
      const prev = last.get(w.bucket) ?? { p: 0, rev: 0 };
      if (w.leaseRevision < prev.rev) stale.push(`bucket ${w.bucket}: P ${w.persistedLsn} of revision ${w.leaseRevision} after revision ${prev.rev}`);
      else {
        if (w.persistedLsn < prev.p) decreased.push(`bucket ${w.bucket}: P ${prev.p} (revision ${prev.rev}) -> ${w.persistedLsn} (revision ${w.leaseRevision})`);
        last.set(w.bucket, { p: Math.max(prev.p, w.persistedLsn), rev: w.leaseRevision });
      }
      let expected = 0;
      for (const [lsn, r] of wal) if (r.bucket === w.bucket && lsn <= w.persistedLsn) expected += r.rows;
      const got = await w.clickhouseRowsUpToP;
      // A query that failed (ClickHouse down) proves nothing either way.
      if (got >= 0 && got < expected) ahead.push(`bucket ${w.bucket}: P ${w.persistedLsn} announced with ${got} of ${expected} rows in ClickHouse`);
    }
    return { watermarks: this.seen.length, decreased, ahead, stale };
  }
}

/** A shard as /v1/shards shows it (JSON: the sink is null without ClickHouse). */
export interface SinkShardView extends Omit<ShardStatus, "leaseRevision"> {
  readonly horizonMicros: number;
  readonly lagMs: number;
  readonly sinkState: string;
  readonly sink: { persistedLsn: number; state: string; pendingRows: number; lagMs: number; degraded: boolean; failures: number; alreadyLandedRows: number; duplicateRows: number; batchDelayMs: number } | null;
}

export async function shardViews(httpPort: number, tenant: string): Promise<SinkShardView[]> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/shards`);
  return ((await res.json()) as SinkShardView[]).filter((s) => s.tenant === tenant);
}

/** Waits until, for every bucket of `table`, the sink's P reached the bucket's last WAL LSN. */
export async function waitPersisted(httpPort: number, nc: NatsConnection, tenant: string, table: string, timeoutMs = 60_000): Promise<SinkShardView[]> {
  const wal = await walRows(nc, tenant, table);
  const lastByBucket = new Map<number, number>();
  for (const [lsn, r] of wal) lastByBucket.set(r.bucket, Math.max(lastByBucket.get(r.bucket) ?? 0, lsn));
  const deadline = Date.now() + timeoutMs;
  let views: SinkShardView[] = [];
  while (Date.now() < deadline) {
    views = await shardViews(httpPort, tenant).catch(() => []);
    const done = [...lastByBucket].every(([b, last]) => {
      const v = views.find((x) => x.table === table && x.bucket === b);
      return v !== undefined && (v.sink?.persistedLsn ?? 0) >= last && v.persistedLsn >= last;
    });
    if (done) return views;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`sinks did not persist ${JSON.stringify([...lastByBucket])} in ${timeoutMs} ms: ${JSON.stringify(views)}`);
}
