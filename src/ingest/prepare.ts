// Pure ingest core: a client batch (Arrow IPC bytes) for one table becomes one
// WAL record per bucket it touches. Nothing here does IO; the gateway actor
// decides, the runtime appends.
import { encodeWalRecord } from "../../protocols/codec.js";
import { bucketOf } from "../../protocols/routing.js";
import { tryFastPrepare } from "./fastpath.js";
import type { BytePool } from "../codec/pool.js";
import { walMsgId, walSubject } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch, tickBatchToIpc } from "../codec/arrow.js";
import { selectRows } from "../codec/tickbatch.js";
import type { TickBatch } from "../codec/tickbatch.js";
import { BatchRejected } from "../codec/arrow.js";
import { checkTimeWindow, timeWindowOf } from "./plausible.js";

export type { PreparedBatch, Producer, WalAppendPlan } from "./plan.js";
import type { PreparedBatch, Producer, WalAppendPlan } from "./plan.js";

/** Buckets of each distinct symbol of a batch (hashed from the char codes for ASCII symbols: no encoding, no cache). */
function bucketsOfSymbols(batch: TickBatch, shards: number): Uint32Array {
  const out = new Uint32Array(batch.symbols.length);
  for (let i = 0; i < out.length; i++) {
    const sym = batch.symbols[i]!;
    out[i] = bucketOf(sym, shards);
  }
  return out;
}

/** Splits `batch` by bucket, keeping row order within each bucket. */
export function splitByBucket(batch: TickBatch, shards: number): Map<number, TickBatch> {
  const symBucket = bucketsOfSymbols(batch, shards);
  const first = symBucket[0];
  if (symBucket.every((b) => b === first)) return new Map(first === undefined ? [] : [[first, batch]]);
  const rowsOf = new Map<number, number[]>();
  for (let r = 0; r < batch.rows; r++) {
    const b = symBucket[batch.symbolIndex[r]!]!;
    let list = rowsOf.get(b);
    if (!list) rowsOf.set(b, (list = []));
    list.push(r);
  }
  const out = new Map<number, TickBatch>();
  for (const [b, rows] of [...rowsOf].sort((x, y) => x[0] - y[0])) out.set(b, selectRows(batch, rows));
  return out;
}

function tsRange(batch: TickBatch): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < batch.rows; i++) {
    const t = batch.ts[i]!;
    if (t < min) min = t;
    if (t > max) max = t;
  }
  return { min, max };
}

/**
 * Validates a client batch against the table spec and plans its WAL appends.
 * Throws BatchRejected (with a message naming input, rule and fix) on bad input.
 */
export function prepareBatch(tenant: string, spec: TableSpec, payload: Uint8Array, producer: Producer | undefined, recordPool?: BytePool, nowMicros = Date.now() * 1000): PreparedBatch {
  // Batches already in the WAL layout, one pair per bucket (TickPublisher's), are checked in place and forwarded,
  // their records built in a buffer of `recordPool` (the owner gives it back once the WAL stored them).
  const window = timeWindowOf(spec, nowMicros);
  return tryFastPrepare(tenant, spec, payload, producer, recordPool, window) ?? prepareBatchGeneral(tenant, spec, payload, producer, nowMicros);
}

/** prepareBatch without the fast path: decode to a TickBatch, split, re-encode (any accepted Arrow input). */
export function prepareBatchGeneral(tenant: string, spec: TableSpec, payload: Uint8Array, producer: Producer | undefined, nowMicros = Date.now() * 1000): PreparedBatch {
  const what = `tenant ${tenant} table ${spec.name}`;
  const batch = decodeTickBatch(spec, payload, what);
  if (batch.rows === 0) {
    // An empty batch would be acked with LSNs that do not exist; refuse it so a producer bug shows.
    throw new BatchRejected("INVALID_ARGUMENT", `${what}: the batch has 0 rows; send at least one row (an empty batch is refused, not acked)`);
  }
  checkTimeWindow(what, spec, batch.ts, batch.rows, timeWindowOf(spec, nowMicros));
  const appends: WalAppendPlan[] = [];
  for (const [bucket, part] of splitByBucket(batch, spec.shards)) {
    const { min, max } = tsRange(part);
    appends.push({
      bucket,
      subject: walSubject(tenant, spec.name, bucket),
      msgId: producer ? walMsgId(producer.id, producer.seq, spec.name, bucket) : undefined,
      rows: part.rows,
      record: encodeWalRecord({
        tenant,
        table: spec.name,
        schemaVersion: spec.version,
        producerId: producer?.id ?? "",
        producerSeq: producer?.seq ?? 0n,
        bucket,
        rows: part.rows,
        minTsMicros: BigInt(min),
        maxTsMicros: BigInt(max),
        payload: tickBatchToIpc(spec, part),
      }),
    });
  }
  return { tenant, table: spec.name, rows: batch.rows, appends };
}
