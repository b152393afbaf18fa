import { describe, expect, it } from "vitest";
import { Table, tableFromArrays, tableFromIPC, tableToIPC } from "apache-arrow";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { DEFAULT_LIMITS, LimitExceeded, resolveLimits } from "../../src/api/limits.js";
import { IpcError, checkIngestPayload, encapsulate, joinIpcStream, splitIpcStream, splitOwnIpcStream } from "../../src/api/ipc/index.js";

const spec = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
const walIpc = (): Uint8Array =>
  tickBatchToIpc(spec, {
    rows: 3,
    symbols: ["A", "B"],
    symbolIndex: Uint32Array.of(0, 1, 0),
    ts: Float64Array.of(1, 2, 3),
    values: [Float64Array.of(1, 2, 3), Float64Array.of(10, 20, 30)],
  });

describe("ipc framing", () => {
  it("ipc - splits an Arrow JS stream into schema, dictionary and record batch", () => {
    const msgs = splitIpcStream(walIpc(), DEFAULT_LIMITS, "t");
    expect(msgs.map((m) => m.info.type)).toEqual(["schema", "dictionaryBatch", "recordBatch"]);
    const schema = msgs[0]!.info;
    expect(schema.type === "schema" && schema.fields).toBe(4);
    const batch = msgs[2]!.info;
    expect(batch.type === "recordBatch" && batch.batch.rows).toBe(3);
  });

  it("ipc - join(split(x)) reads back the same table", () => {
    const bytes = walIpc();
    const again = joinIpcStream(splitOwnIpcStream(bytes));
    expect(tableFromIPC(again).toArray().map((r) => r.toJSON())).toEqual(tableFromIPC(bytes).toArray().map((r) => r.toJSON()));
  });

  it("ipc - encapsulate gives a schema message Arrow can read", () => {
    const [schema] = splitOwnIpcStream(walIpc());
    const bytes = encapsulate(schema!.header);
    expect(new DataView(bytes.buffer).getUint32(0, true)).toBe(0xffffffff);
    const stream = new Uint8Array(bytes.length + 8);
    stream.set(bytes);
    stream.set([0xff, 0xff, 0xff, 0xff], bytes.length);
    const t = tableFromIPC(stream);
    expect(t.schema.fields.map((f) => f.name)).toEqual(["sym", "ts", "price", "size"]);
  });

  it("ipc - checkIngestPayload counts rows of a valid payload", () => {
    expect(checkIngestPayload(walIpc(), DEFAULT_LIMITS, "t")).toEqual({ rows: 3, compressed: false });
  });
});

describe("ipc limits", () => {
  it("ipc - rows over maxBatchRows are RESOURCE_EXHAUSTED naming the limit", () => {
    const limits = resolveLimits({ maxBatchRows: 2 });
    expect(() => checkIngestPayload(walIpc(), limits, "t")).toThrowError(/maxBatchRows = 2/);
    expect(() => checkIngestPayload(walIpc(), limits, "t")).toThrowError(LimitExceeded);
  });

  it("ipc - columns over maxColumns", () => {
    expect(() => checkIngestPayload(walIpc(), resolveLimits({ maxColumns: 3 }), "t")).toThrowError(/maxColumns = 3/);
  });

  it("ipc - dictionary entries over maxDictionaryEntries", () => {
    expect(() => checkIngestPayload(walIpc(), resolveLimits({ maxDictionaryEntries: 1 }), "t")).toThrowError(/maxDictionaryEntries = 1/);
  });

  it("ipc - a huge metadata length field is refused without allocating", () => {
    const bytes = Uint8Array.from(walIpc());
    new DataView(bytes.buffer).setInt32(4, 0x7ffffff0, true);
    expect(() => checkIngestPayload(bytes, DEFAULT_LIMITS, "t")).toThrowError(IpcError);
  });

  it("ipc - truncation anywhere is INVALID_ARGUMENT", () => {
    const bytes = walIpc();
    for (let n = 1; n < bytes.length - 8; n += 7) {
      try {
        checkIngestPayload(bytes.subarray(0, n), DEFAULT_LIMITS, "t");
      } catch (e) {
        expect(e instanceof IpcError || e instanceof LimitExceeded).toBe(true);
      }
    }
  });

  it("ipc - random bit flips never escape as anything but IpcError or LimitExceeded", () => {
    const base = Uint8Array.from(walIpc());
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let i = 0; i < 3000; i++) {
      const bytes = base.slice();
      const flips = 1 + Math.floor(rnd() * 4);
      for (let f = 0; f < flips; f++) {
        const at = Math.floor(rnd() * bytes.length);
        bytes[at]! ^= 1 << Math.floor(rnd() * 8);
      }
      try {
        checkIngestPayload(bytes, DEFAULT_LIMITS, "t");
      } catch (e) {
        if (!(e instanceof IpcError || e instanceof LimitExceeded)) throw e;
      }
    }
  });

  it("ipc - a schema-only stream (no batches) passes with zero rows", () => {
    const t = tableFromArrays({ a: Float64Array.of() });
    expect(checkIngestPayload(tableToIPC(new Table(t.schema), "stream"), DEFAULT_LIMITS, "t").rows).toBe(0);
  });
});
