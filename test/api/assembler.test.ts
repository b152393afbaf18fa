import { describe, expect, it } from "vitest";
import { Dictionary, Int32, RecordBatchStreamWriter, Table, Utf8, makeVector, tableFromIPC, vectorFromArray } from "apache-arrow";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { DEFAULT_LIMITS, LimitExceeded, resolveLimits } from "../../src/api/limits.js";
import { IpcError, splitOwnIpcStream } from "../../src/api/ipc/index.js";
import { FlightIpcAssembler } from "../../src/api/flight/assembler.js";

const spec = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
const batchIpc = (rows: number, symbols: string[]) =>
  tickBatchToIpc(spec, {
    rows,
    symbols,
    symbolIndex: Uint32Array.from({ length: rows }, (_, i) => i % symbols.length),
    ts: Float64Array.from({ length: rows }, (_, i) => i + 1),
    values: [Float64Array.from({ length: rows }, (_, i) => i), Float64Array.from({ length: rows }, () => 1)],
  });

const rowsOf = (bytes: Uint8Array) => tableFromIPC(bytes).toArray().map((r) => ({ sym: String(r.sym), ts: Number(r.ts), price: r.price as number }));

describe("flight assembler", () => {
  it("assembler - FlightData messages become one IPC stream per record batch", () => {
    const a = new FlightIpcAssembler(DEFAULT_LIMITS, "t");
    const out: Uint8Array[] = [];
    for (const m of splitOwnIpcStream(batchIpc(5, ["A", "B"]))) {
      const r = a.push(m.header, m.body);
      if (r) out.push(r.payload);
    }
    expect(out).toHaveLength(1);
    expect(rowsOf(out[0]!)).toEqual(rowsOf(batchIpc(5, ["A", "B"])));
  });

  it("assembler - a replacement dictionary applies to the batches after it", () => {
    const a = new FlightIpcAssembler(DEFAULT_LIMITS, "t");
    const first = splitOwnIpcStream(batchIpc(2, ["A"]));
    const second = splitOwnIpcStream(batchIpc(2, ["Z"])).slice(1); // a later stream position: no schema
    const outs = [...first, ...second].map((m) => a.push(m.header, m.body)).filter((x) => x !== undefined);
    expect(outs.map((o) => rowsOf(o.payload)[0]!.sym)).toEqual(["A", "Z"]);
  });

  it("assembler - dictionary deltas accumulate", () => {
    const type = new Dictionary(new Utf8(), new Int32());
    const dict1 = vectorFromArray(["A", "B"], new Utf8());
    const v1 = makeVector({ type, length: 2, nullCount: 0, data: Int32Array.of(0, 1), dictionary: dict1 } as never);
    const dict2 = dict1.concat(vectorFromArray(["C"], new Utf8()));
    const v2 = makeVector({ type, length: 1, nullCount: 0, data: Int32Array.of(2), dictionary: dict2 } as never);
    const w = new RecordBatchStreamWriter();
    w.write(new Table({ s: v1 }).batches[0]!);
    w.write(new Table({ s: v2 }).batches[0]!);
    const msgs = splitOwnIpcStream(w.finish().toUint8Array(true));
    const a = new FlightIpcAssembler(DEFAULT_LIMITS, "t");
    const outs = msgs.map((m) => a.push(m.header, m.body)).filter((x) => x !== undefined);
    expect(outs).toHaveLength(2);
    expect(tableFromIPC(outs[1]!.payload).getChild("s")!.get(0)).toBe("C");
  });

  it("assembler - a batch before the schema, or a truncated body, is INVALID_ARGUMENT", () => {
    const msgs = splitOwnIpcStream(batchIpc(3, ["A"]));
    expect(() => new FlightIpcAssembler(DEFAULT_LIMITS, "t").push(msgs[2]!.header, msgs[2]!.body)).toThrowError(IpcError);
    const a = new FlightIpcAssembler(DEFAULT_LIMITS, "t");
    a.push(msgs[0]!.header, msgs[0]!.body);
    a.push(msgs[1]!.header, msgs[1]!.body);
    expect(() => a.push(msgs[2]!.header, msgs[2]!.body.subarray(0, 8))).toThrowError(/truncated/);
    expect(() => a.push(new Uint8Array(0), Uint8Array.of(1))).toThrowError(/data_body without data_header/);
  });

  it("assembler - rows over maxBatchRows and dictionary size over its limit are RESOURCE_EXHAUSTED", () => {
    const msgs = splitOwnIpcStream(batchIpc(50, ["A", "B", "C"]));
    const feed = (limits: typeof DEFAULT_LIMITS) => {
      const a = new FlightIpcAssembler(limits, "t");
      for (const m of msgs) a.push(m.header, m.body);
    };
    expect(() => feed(resolveLimits({ maxBatchRows: 10 }))).toThrowError(LimitExceeded);
    expect(() => feed(resolveLimits({ maxDictionaryEntries: 2 }))).toThrowError(/maxDictionaryEntries/);
    expect(() => feed(resolveLimits({ maxDictionaryBytes: 8 }))).toThrowError(/maxDictionaryBytes/);
  });
});
