// The raw ClickHouse peer of the sink benchmarks (bench:sink, bench:sustained):
// rows already split by shard bucket, encoded as RowBinary and inserted with the
// project's ClickHouse client, the INSERT sizes the sink uses, one INSERT in
// flight per shard, into a copy of the table named <table>_raw.
import type { TableSpec } from "../protocols/tablespec.js";
import type { TickBatch } from "../src/codec/tickbatch.js";
import { ensureSchema, encodeRowBinarySegments, insertRowBinary } from "../src/clickhouse/index.js";
import { DEFAULT_SINK_LIMITS } from "../src/sink/index.js";
import type { SinkClickhouse } from "../src/sink/index.js";

/** One WAL record's rows of one bucket, with the LSN the WAL gave it. */
export interface Stored {
  readonly lsn: number;
  readonly batch: TickBatch;
}

export const rowsIn = (wal: ReadonlyMap<number, readonly Stored[]>): number => [...wal.values()].reduce((n, l) => n + l.reduce((m, r) => m + r.batch.rows, 0), 0);

/** The rows of one table, by bucket, as the WAL holds them. */
export interface TableRows {
  readonly spec: TableSpec;
  readonly wal: ReadonlyMap<number, readonly Stored[]>;
}

/** Inserts every bucket's rows of every table as they are, all shards at once; resolves with rows/s. */
export async function rawInsertRun(ch: SinkClickhouse, tenant: string, tables: readonly TableRows[]): Promise<number> {
  const raws = tables.map((t) => ({ raw: { ...t.spec, name: `${t.spec.name}_raw` }, wal: t.wal }));
  for (const { raw } of raws) await ensureSchema(ch.client, tenant, raw);
  const capabilities = await ch.capabilities();
  const t0 = performance.now();
  await Promise.all(
    raws.flatMap(({ raw, wal }) =>
      [...wal].map(async ([bucket, records]) => {
        for (let i = 0; i < records.length; ) {
          const group: Stored[] = [];
          let rows = 0;
          while (i < records.length && (group.length === 0 || rows + records[i]!.batch.rows <= DEFAULT_SINK_LIMITS.maxBatchRows)) {
            rows += records[i]!.batch.rows;
            group.push(records[i++]!);
          }
          const body = encodeRowBinarySegments(raw, group.map((r) => ({ batch: r.batch, meta: { lsn: r.lsn, shard: bucket } })));
          await insertRowBinary(ch.client, tenant, raw, body, { rows, capabilities });
        }
      }),
    ),
  );
  return tables.reduce((n, t) => n + rowsIn(t.wal), 0) / ((performance.now() - t0) / 1000);
}
