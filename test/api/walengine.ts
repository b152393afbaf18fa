// A small real query engine for the API tests (the real one is src/query, issue
// 5): a range scan {table, t0, t1, symbols?} answered by reading the table's
// WAL from JetStream with an ordered consumer, up to the stream position seen
// when the query started. Rows come in LSN order. Honours the abort signal.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { RecordBatch, Schema } from "apache-arrow";
import { decodeWalRecord } from "../../protocols/codec.js";
import { walArrowSchema } from "../../protocols/arrow.js";
import { walStream } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { Catalog } from "../../src/catalog.js";
import { ipcToTickBatch, tickBatchToRecordBatch } from "../../src/codec/arrow.js";
import { selectRows } from "../../src/codec/tickbatch.js";
import { QueryError, scopedTable } from "../../src/api/index.js";
import type { QueryEngine } from "../../src/api/index.js";

export interface RangeQuery {
  readonly table: string;
  readonly t0: number;
  readonly t1: number;
  readonly symbols?: readonly string[];
}

const MAX_TS = Date.UTC(2200, 0, 1) * 1000;
// Per-table WAL filter; protocols/subjects.ts has per-tenant and per-shard subjects only.
const tableWalFilter = (tenant: string, table: string): string => `px.${tenant}.wal.${table}.*`;

function parseRange(q: unknown): RangeQuery {
  const o = q as Record<string, unknown>;
  const allowed = new Set(["table", "t0", "t1", "symbols", "tenant"]);
  for (const k of Object.keys(o)) if (!allowed.has(k)) throw new QueryError("INVALID_ARGUMENT", `query field "${k}" is unknown; a range query has table, t0, t1, symbols`);
  if (typeof o.table !== "string") throw new QueryError("INVALID_ARGUMENT", `query needs "table" (a table name)`);
  const t0 = o.t0 ?? 0;
  const t1 = o.t1 ?? MAX_TS;
  if (typeof t0 !== "number" || typeof t1 !== "number" || !Number.isSafeInteger(t0) || !Number.isSafeInteger(t1)) {
    throw new QueryError("INVALID_ARGUMENT", `query t0 and t1 must be integer microseconds since the Unix epoch`);
  }
  if (t1 < t0) throw new QueryError("INVALID_ARGUMENT", `query range is empty: t1 ${t1} is before t0 ${t0}; swap them`);
  if (o.symbols !== undefined && !(Array.isArray(o.symbols) && o.symbols.every((s) => typeof s === "string"))) {
    throw new QueryError("INVALID_ARGUMENT", `query symbols must be a list of strings`);
  }
  return { table: o.table, t0, t1, ...(o.symbols === undefined ? {} : { symbols: o.symbols as string[] }) };
}

export interface WalEngineStats {
  runs: number;
  batches: number;
  aborted: number;
  open: number;
}

export function walQueryEngine(source: { nc: NatsConnection; catalog(): Catalog }): QueryEngine & { stats: WalEngineStats } {
  const stats: WalEngineStats = { runs: 0, batches: 0, aborted: 0, open: 0 };
  const specOf = (tenant: string, name: string): TableSpec => {
    const table = scopedTable({ tenant }, [name]);
    const spec = source.catalog().get(tenant)?.get(table);
    if (!spec) throw new QueryError("NOT_FOUND", `tenant ${tenant} has no table ${table}`);
    return spec;
  };

  async function* run(tenant: string, query: unknown, signal: AbortSignal): AsyncGenerator<RecordBatch> {
    const q = parseRange(query);
    const spec = specOf(tenant, q.table);
    const table = spec.name;
    stats.runs++;
    stats.open++;
    try {
      const jsm = await jetstreamManager(source.nc);
      const info = await jsm.streams.info(walStream(tenant), { subjects_filter: tableWalFilter(tenant, table) });
      const matching = Object.values(info.state.subjects ?? {}).reduce((a, b) => a + b, 0);
      if (matching === 0) return;
      const lastSeq = info.state.last_seq;
      const consumer = await jetstream(source.nc).consumers.get(walStream(tenant), { filter_subjects: tableWalFilter(tenant, table) });
      const messages = await consumer.consume({ max_messages: 256 });
      const stop = () => void messages.stop();
      signal.addEventListener("abort", stop, { once: true });
      try {
        const wanted = q.symbols ? new Set(q.symbols) : undefined;
        for await (const m of messages) {
          if (signal.aborted || m.seq > lastSeq) break;
          const rec = decodeWalRecord(m.data);
          const batch = ipcToTickBatch(spec, rec.payload, `WAL record ${m.seq}`);
          const rows: number[] = [];
          for (let r = 0; r < batch.rows; r++) {
            const ts = batch.ts[r]!;
            if (ts >= q.t0 && ts < q.t1 && (!wanted || wanted.has(batch.symbols[batch.symbolIndex[r]!]!))) rows.push(r);
          }
          if (rows.length > 0) {
            stats.batches++;
            yield tickBatchToRecordBatch(spec, rows.length === batch.rows ? batch : selectRows(batch, rows));
          }
          if (m.info.pending === 0 || m.seq >= lastSeq) break;
        }
      } finally {
        signal.removeEventListener("abort", stop);
        await messages.close().catch(() => {});
      }
      if (signal.aborted) stats.aborted++;
    } finally {
      stats.open--;
    }
  }

  return {
    stats,
    schema: async (tenant: string, query: unknown): Promise<Schema> => walArrowSchema(specOf(tenant, parseRange(query).table)),
    run: (tenant, query, signal) => run(tenant, query, signal),
    tableQuery: (table: string) => ({ table, t0: 0, t1: MAX_TS }),
  };
}
