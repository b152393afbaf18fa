// The manifest a store would write for an encoded snapshot, for codec tests that skip the store.
import type { SnapshotManifest } from "../../protocols/codec.js";
import { HotTable } from "../../src/hotset/index.js";
import type { HotTableColumns } from "../../src/hotset/index.js";

export function manifestOf(t: HotTable | HotTableColumns, enc: { data: Uint8Array; sha256: string; chunkRows: number[]; seamRows: number; rows: number }, dataFormat: number, schemaVersion = 1): SnapshotManifest {
  const cols = t instanceof HotTable ? t.exportColumns() : t;
  return {
    tenant: "t",
    table: cols.table,
    bucket: 0,
    lsn: BigInt(cols.appliedLsn),
    schemaVersion,
    symbols: { symbols: [...cols.symbols] },
    rows: BigInt(enc.rows),
    persistedLsn: BigInt(cols.persistedLsn),
    horizonMicros: BigInt(cols.horizonMicros),
    dataObject: "x",
    dataBytes: BigInt(enc.data.length),
    dataSha256: enc.sha256,
    dataFormat,
    chunkRows: enc.chunkRows.map(BigInt),
    seamRows: BigInt(enc.seamRows),
    createdAtMicros: 0n,
  } as unknown as SnapshotManifest;
}

