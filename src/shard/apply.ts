// The one pure apply function of a shard: a WAL record (LSN + protobuf bytes)
// into the hot set. Replay and live ingest both call it, so a recovered shard
// equals one that never stopped.
import { decodeWalRecord } from "../../protocols/codec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../codec/arrow.js";
import type { HotTable } from "../hotset/index.js";

export interface WalEntry {
  readonly lsn: number;
  readonly data: Uint8Array;
}

export class WalApplyError extends Error {
  override readonly name = "WalApplyError";
  readonly _tag = "WalApplyError";
}

export function applyWalRecord(table: HotTable, spec: TableSpec, entry: WalEntry): void {
  if (entry.lsn <= table.appliedLsn) return; // redelivered: already in the hot set
  let rec;
  try {
    rec = decodeWalRecord(entry.data);
  } catch (e) {
    throw new WalApplyError(`WAL record at LSN ${entry.lsn} of table ${spec.name}: ${(e as Error).message}`, { cause: e });
  }
  if (rec.schemaVersion !== spec.version) {
    throw new WalApplyError(`WAL record at LSN ${entry.lsn} was written for schema version ${rec.schemaVersion} of table ${spec.name}; this node has version ${spec.version}`);
  }
  table.apply(entry.lsn, decodeTickBatch(spec, rec.payload, `WAL record at LSN ${entry.lsn}`));
}
