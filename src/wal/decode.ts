// Decoding a WAL record once per node: a shard and its sink both read every
// record of the shard from the WAL; whichever sees a record first decodes it
// and leaves it here, the other takes it. Bounded: a record the other side does
// not take soon (one of them far behind) is dropped and decoded again later.
import { decodeWalRecord } from "../../protocols/codec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../codec/arrow.js";
import type { TickBatch } from "../codec/tickbatch.js";
import { TaggedError } from "../../protocols/tagged.js";

/** A WAL record's envelope facts and its ticks. */
export interface DecodedRecord {
  readonly schemaVersion: number;
  readonly batch: TickBatch;
  readonly payloadBytes: number;
  readonly minTsMicros: number;
  readonly maxTsMicros: number;
}

/** A WAL record written for another version of the table spec than this node's. */
export class WalSchemaVersionError extends TaggedError("WalSchemaVersionError") {}

/**
 * Envelope and Arrow payload of a WAL record, as `spec`'s ticks. Throws
 * `WalSchemaVersionError` for a record of another spec version, else the
 * codec's errors.
 */
export function decodeWalEntry(spec: TableSpec, lsn: number, data: Uint8Array): DecodedRecord {
  const rec = decodeWalRecord(data);
  if (rec.schemaVersion !== spec.version) {
    throw new WalSchemaVersionError(
      `WAL record at LSN ${lsn} was written for schema version ${rec.schemaVersion} of table ${spec.name}; this node has version ${spec.version}; run every node with the same table spec`,
    );
  }
  const batch = decodeTickBatch(spec, rec.payload, `WAL record at LSN ${lsn}`);
  let minTs = Number(rec.minTsMicros);
  let maxTs = Number(rec.maxTsMicros);
  if (batch.rows > 0 && !(minTs <= maxTs && maxTs > 0)) {
    // Envelope without bounds: compute them.
    minTs = Infinity;
    maxTs = -Infinity;
    for (let i = 0; i < batch.rows; i++) {
      const t = batch.ts[i]!;
      if (t < minTs) minTs = t;
      if (t > maxTs) maxTs = t;
    }
  }
  return { schemaVersion: rec.schemaVersion, batch, payloadBytes: rec.payload.length, minTsMicros: minTs, maxTsMicros: maxTs };
}

/** Decoded records of one shard waiting for the other reader, by LSN (oldest dropped past `cap`). */
export class DecodedRecordCache {
  private readonly entries = new Map<number, DecodedRecord>();
  hits = 0;

  constructor(private readonly cap = 256) {}

  get size(): number {
    return this.entries.size;
  }

  /** The record if the other reader left it (it is removed: each side takes it once). */
  take(lsn: number): DecodedRecord | undefined {
    const d = this.entries.get(lsn);
    if (d !== undefined) {
      this.entries.delete(lsn);
      this.hits++;
    }
    return d;
  }

  put(lsn: number, d: DecodedRecord): void {
    this.entries.set(lsn, d);
    if (this.entries.size > this.cap) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  /** Takes the record, or decodes it and leaves it for the other reader. */
  takeOrDecode(spec: TableSpec, lsn: number, data: Uint8Array): DecodedRecord {
    const hit = this.take(lsn);
    if (hit !== undefined) return hit;
    const d = decodeWalEntry(spec, lsn, data);
    this.put(lsn, d);
    return d;
  }
}
