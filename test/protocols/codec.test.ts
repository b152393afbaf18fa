import { describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { toBinary, create } from "@bufbuild/protobuf";
import {
  CorruptMessageError,
  UnsupportedVersionError,
  decodeControlRequest,
  decodeSymbolDictionary,
  decodeWalRecord,
  decodeWatermark,
  encodeControlRequest,
  encodeSymbolDictionary,
  encodeWalRecord,
  encodeWatermark,
} from "../../protocols/index.js";
import { WalRecordSchema, RecordKind } from "../../protocols/gen/proxist/v1/wal_pb.js";
import { bucketOf, fnv1a32 } from "../../protocols/routing.js";
import { parseIngestSubject, parseWalSubject, walMsgId, walSubject } from "../../protocols/subjects.js";

const record = {
  tenant: "default",
  table: "trades",
  schemaVersion: 1,
  producerId: "p",
  producerSeq: 9n,
  bucket: 3,
  rows: 2,
  minTsMicros: 5n,
  maxTsMicros: 6n,
  payload: Uint8Array.of(1, 2, 3),
};

describe("protocols - codecs", () => {
  it("wal record - round-trips every field", () => {
    const back = decodeWalRecord(encodeWalRecord(record));
    expect({ ...back, $typeName: undefined }).toMatchObject({ ...record, version: 1, kind: RecordKind.TICKS });
  });

  it("wal record - a version the reader does not know is rejected with the versions it supports", () => {
    const bytes = toBinary(WalRecordSchema, create(WalRecordSchema, { ...record, version: 2, kind: RecordKind.TICKS }));
    expect(() => decodeWalRecord(bytes)).toThrow(UnsupportedVersionError);
    expect(() => decodeWalRecord(bytes)).toThrow(/version 2; this reader supports 1/);
  });

  it("wal record - corrupt bytes are rejected, not half-read", () => {
    const good = encodeWalRecord(record);
    expect(() => decodeWalRecord(good.subarray(0, good.length - 2))).toThrow(CorruptMessageError);
    expect(() => decodeWalRecord(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff))).toThrow(CorruptMessageError);
    // Unknown kind (0) is not a tick record.
    const noKind = toBinary(WalRecordSchema, create(WalRecordSchema, { ...record, version: 1 }));
    expect(() => decodeWalRecord(noKind)).toThrow(/unknown record kind/);
  });

  it("symbol dictionary, watermark, control request - round-trip", () => {
    expect(decodeSymbolDictionary(encodeSymbolDictionary(["A", "B", "ÄÖ"])).symbols).toEqual(["A", "B", "ÄÖ"]);
    const wm = decodeWatermark(encodeWatermark({ tenant: "t", table: "x", bucket: 1, persistedLsn: 77n, tPersistedMicros: 5n, emittedAtMicros: 6n, leaseRevision: 2n }));
    expect(wm.persistedLsn).toBe(77n);
    const req = decodeControlRequest(encodeControlRequest({ verb: "status", requestId: "r", body: new Uint8Array() }));
    expect(req.verb).toBe("status");
  });

  it("generated code - protocols/gen matches the .proto sources", () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const out = mkdtempSync(join(tmpdir(), "px-gen-"));
    execFileSync(join(root, "node_modules/.bin/buf"), ["generate", "-o", out], { cwd: join(root, "protocols") });
    for (const sub of ["proxist/v1", "arrow/flight/protocol", "arrow/flight/protocol/sql"]) {
      const dir = join(out, "gen", sub);
      for (const f of readdirSync(dir).filter((x) => x.endsWith(".ts"))) {
        expect(readFileSync(join(dir, f), "utf8"), f).toBe(readFileSync(join(root, "protocols/gen", sub, f), "utf8"));
      }
    }
    // buf runs protoc-gen-es as a child process: seconds on a loaded machine.
  }, 60_000);
});

describe("protocols - routing and subjects", () => {
  it("routing - FNV-1a matches the published test vectors and is stable", () => {
    expect(fnv1a32(new TextEncoder().encode(""))).toBe(0x811c9dc5);
    expect(fnv1a32(new TextEncoder().encode("a"))).toBe(0xe40c292c);
    expect(fnv1a32(new TextEncoder().encode("foobar"))).toBe(0xbf9cf968);
    expect(bucketOf("AAPL", 4)).toBe(bucketOf("AAPL", 4));
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[bucketOf(`S${i}`, 4)]!++;
    for (const c of counts) expect(c).toBeGreaterThan(800);
  });

  it("subjects - build and parse agree", () => {
    expect(walSubject("t", "x", 3)).toBe("px.t.wal.x.3");
    expect(parseWalSubject("px.t.wal.x.3")).toEqual({ tenant: "t", table: "x", bucket: 3 });
    expect(parseWalSubject("px.t.wal.x.-1")).toBeUndefined();
    expect(parseIngestSubject("px.t.ingest.x")).toEqual({ tenant: "t", table: "x" });
    expect(parseIngestSubject("px.t.ingest")).toBeUndefined();
    expect(walMsgId("p", 5n, "x", 2)).toBe("p:5:x:2");
  });
});
