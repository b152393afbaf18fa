// The per-node decode cache between a shard and its sink: the first reader of a
// WAL record decodes it, the second takes it; bounded; bad records are errors.
import { describe, expect, it } from "vitest";
import { encodeWalRecord } from "../../protocols/codec.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { decodeSinkRecord } from "../../src/sink/index.js";
import { DecodedRecordCache, WalSchemaVersionError, decodeWalEntry } from "../../src/wal/index.js";
import { SPEC, batch } from "./fixtures.js";

const wal = (seed: number, schemaVersion = 1): Uint8Array =>
  encodeWalRecord({ tenant: "t", table: "trades", schemaVersion, producerId: "p", producerSeq: 1n, bucket: 0, rows: 10, minTsMicros: 0n, maxTsMicros: 0n, payload: tickBatchToIpc(SPEC, batch(10, seed)) });

describe("sink decode cache", () => {
  it("decoded - the second reader gets the first reader's batch; each takes it once", () => {
    const c = new DecodedRecordCache();
    const data = wal(1);
    const a = c.takeOrDecode(SPEC, 7, data);
    expect(c.size).toBe(1);
    const b = c.takeOrDecode(SPEC, 7, data);
    expect(b).toBe(a);
    expect(c.size).toBe(0);
    expect(c.hits).toBe(1);
    expect(a.batch.rows).toBe(10);
    expect(a.minTsMicros).toBeLessThanOrEqual(a.maxTsMicros);
  });

  it("decoded - bounded: the oldest records nobody took are dropped", () => {
    const c = new DecodedRecordCache(3);
    for (let lsn = 1; lsn <= 5; lsn++) c.put(lsn, decodeWalEntry(SPEC, lsn, wal(lsn)));
    expect(c.size).toBe(3);
    expect(c.take(1)).toBeUndefined();
    expect(c.take(5)).toBeDefined();
  });

  it("decoded - a record of a newer spec version is refused before its payload is read, by the sink too", () => {
    expect(() => decodeWalEntry(SPEC, 3, wal(1, 2))).toThrow(WalSchemaVersionError);
    expect(() => decodeSinkRecord(SPEC, 3, wal(1, 2), 0)).toThrow(/written for version 2 of table trades; this node serves version 1/);
    expect(() => decodeSinkRecord(SPEC, 4, new Uint8Array([1, 2, 3]), 0)).toThrow(/WAL record at LSN 4 of table trades/);
  });
});
