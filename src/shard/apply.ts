// The one pure apply function of a shard: a WAL record (LSN + protobuf bytes)
// into the hot set. Replay and live ingest both call it, so a recovered shard
// equals one that never stopped.
import type { TableSpec } from "../../protocols/tablespec.js";
import type { HotTable } from "../hotset/index.js";
import { WalSchemaVersionError, decodeWalEntry } from "../wal/index.js";
import type { DecodedRecord } from "../wal/index.js";
import { TaggedError } from "../../protocols/tagged.js";

export interface WalEntry {
  readonly lsn: number;
  readonly data: Uint8Array;
  /** `data` already decoded (by the consumer, or by this node's sink): used instead of decoding again. */
  readonly decoded?: DecodedRecord;
  /** When the WAL stored it (JetStream's timestamp, ms): the shard's persistence lag is aged from it. */
  readonly appendedAtMs?: number;
}

/** A record the shard cannot apply; `unreadable` unless it is only of a newer spec version (which the restart with that spec fixes). */
export class WalApplyError extends TaggedError("WalApplyError") {
  constructor(
    message: string,
    readonly lsn: number,
    readonly unreadable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** What one applied record brought: its rows and newest tick (0 rows: a redelivery, nothing changed). */
export interface Applied {
  readonly rows: number;
  readonly maxTsMicros: number;
}

export function applyWalRecord(table: HotTable, spec: TableSpec, entry: WalEntry): Applied {
  if (entry.lsn <= table.appliedLsn) return { rows: 0, maxTsMicros: -Infinity }; // redelivered: already in the hot set
  let d = entry.decoded;
  if (d === undefined) {
    try {
      d = decodeWalEntry(spec, entry.lsn, entry.data);
    } catch (e) {
      // Whatever the reason (envelope, spec version, payload), this shard cannot apply the record.
      if (e instanceof WalSchemaVersionError) throw new WalApplyError(e.message, entry.lsn, false, { cause: e });
      throw new WalApplyError(`WAL record unreadable: the record at LSN ${entry.lsn} of table ${spec.name} does not decode (${(e as Error).message})`, entry.lsn, true, { cause: e });
    }
  }
  const batch = d.batch;
  table.apply(entry.lsn, batch);
  let maxTs = -Infinity;
  const ts = batch.ts;
  for (let i = 0; i < batch.rows; i++) if (ts[i]! > maxTs) maxTs = ts[i]!;
  return { rows: batch.rows, maxTsMicros: maxTs };
}
