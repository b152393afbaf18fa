import { describe, expect, it } from "vitest";
import { create, toBinary } from "@bufbuild/protobuf";
import { Metadata, status as Status } from "@grpc/grpc-js";
import { authorize, basicOf, bearerOf } from "../../src/api/auth.js";
import { Dictionary, Field, Float64, Int32, Schema, Utf8 } from "apache-arrow";
import { FlightDataSchema, FlightService } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { walArrowSchema } from "../../protocols/arrow.js";
import { tickBatchToRecordBatch } from "../../src/codec/arrow.js";
import { AuthError } from "../../src/auth/index.js";
import type { Principal } from "../../src/auth/index.js";
import { ApiError, LimitExceeded, QueryError, classify, resolveLimits } from "../../src/api/index.js";
import { toStatus } from "../../src/api/errors.js";
import { serverDefinition } from "../../src/api/grpcdef.js";
import type { Decoded } from "../../src/api/grpcdef.js";
import { OrderedPipeline } from "../../src/api/pipeline.js";
import { checkQueryScope, checkQueryTenant, grantedTables, scopedTable, tableSpec } from "../../src/api/scope.js";
import { chunks, conform } from "../../src/api/arrowout.js";
import { readMessageInfo } from "../../src/api/ipc/index.js";
import { DEFAULT_LIMITS } from "../../src/api/limits.js";

const alpha: Principal = { tokenId: "x", tenant: "alpha", role: "reader", expiresAtMs: undefined };

describe("api errors", () => {
  it("errors - typed errors keep their code; unknown errors become INTERNAL without their text", () => {
    const lines: string[] = [];
    const log = (l: string) => lines.push(l);
    expect(classify(new AuthError("PERMISSION_DENIED", "no"), log).code).toBe("PERMISSION_DENIED");
    expect(classify(new LimitExceeded("maxColumns", "x", 3, 2, "fix"), log).code).toBe("RESOURCE_EXHAUSTED");
    expect(classify(new QueryError("NOT_FOUND", "tenant alpha has no table x"), log)).toMatchObject({ code: "NOT_FOUND", message: "tenant alpha has no table x" });
    const internal = classify(new Error("secret px_abc detail"), log);
    expect(internal.code).toBe("INTERNAL");
    expect(internal.message).not.toContain("secret");
    expect(lines[0]).toContain(internal.message.match(/ref (\w+)/)![1]);
    expect(toStatus(new ApiError("NOT_FOUND", "gone")).code).toBe(Status.NOT_FOUND);
    // No duck typing: an unknown error with a status-like `code` is still INTERNAL.
    expect(classify(Object.assign(new Error("raw"), { code: "NOT_FOUND" }), log).code).toBe("INTERNAL");
  });
});

describe("api scope", () => {
  it("scope - bare and own-tenant names resolve; another tenant is PERMISSION_DENIED", () => {
    expect(scopedTable(alpha, ["trades"])).toBe("trades");
    expect(scopedTable(alpha, ["alpha.trades"])).toBe("trades");
    expect(scopedTable(alpha, ["alpha", "trades"])).toBe("trades");
    expect(() => scopedTable(alpha, ["beta", "trades"])).toThrowError(/not this token's tenant/);
    expect(() => scopedTable(alpha, ["beta.trades"])).toThrowError(AuthError);
    expect(() => scopedTable(alpha, ["a/b/c"])).toThrowError(ApiError);
    expect(() => checkQueryTenant(alpha, { tenant: "beta", table: "t" })).toThrowError(AuthError);
    expect(() => checkQueryTenant(alpha, { tenant: "alpha", table: "t" })).not.toThrow();
  });

  it("scope - a token with table grants reaches only those tables, in names, queries, joins and listings", () => {
    const quotesOnly = { tenant: "alpha", tables: ["quotes"] };
    expect(scopedTable(quotesOnly, ["alpha.quotes"])).toBe("quotes");
    expect(() => scopedTable(quotesOnly, ["trades"])).toThrowError(/table trades is not granted to this token \(it may use only quotes of tenant alpha\); ask an admin/);
    expect(() => scopedTable(quotesOnly, ["alpha", "trades"])).toThrowError(AuthError);
    expect(() => checkQueryScope(quotesOnly, { table: "quotes" })).not.toThrow();
    expect(() => checkQueryScope(quotesOnly, { table: "alpha.trades" })).toThrowError(/not granted/);
    expect(() => checkQueryScope(quotesOnly, { op: "asof", table: "quotes", right: { table: "trades" } })).toThrowError(/table trades is not granted/);
    expect(() => checkQueryScope(quotesOnly, { table: "beta.quotes" })).toThrowError(/not this token's tenant/);
    expect(grantedTables(quotesOnly, ["trades", "quotes", "bars"])).toEqual(["quotes"]);
    // Without grants: every table, as before.
    expect(() => checkQueryScope(alpha, { op: "asof", table: "quotes", right: { table: "trades" } })).not.toThrow();
    expect(grantedTables(alpha, ["trades", "quotes"])).toEqual(["trades", "quotes"]);
    // A table that is not granted is refused whether it exists or not, and NOT_FOUND lists only granted tables.
    const catalog = new Map([["alpha", new Map([["quotes", {}], ["trades", {}]])]]) as unknown as Parameters<typeof tableSpec>[0];
    const p = { tokenId: "x", role: "reader" as const, expiresAtMs: undefined, ...quotesOnly };
    expect(() => tableSpec(catalog, p, "nosuch")).toThrowError(AuthError);
    expect(() => tableSpec(catalog, { ...p, tables: ["quotes", "nosuch"] }, "nosuch")).toThrowError(/has no table nosuch \(its tables: quotes\)/);
  });
});

describe("api grpc definitions", () => {
  const def = serverDefinition(FlightService, 1024);
  const doPut = def.doPut!;
  it("grpcdef - paths follow the service and method names", () => {
    expect(doPut.path).toBe("/arrow.flight.protocol.FlightService/DoPut");
    expect([doPut.requestStream, doPut.responseStream]).toEqual([true, true]);
  });

  it("grpcdef - garbage decodes to INVALID_ARGUMENT, oversize to RESOURCE_EXHAUSTED, never a throw", () => {
    const bad = doPut.requestDeserialize(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])) as Decoded<unknown>;
    expect(bad.ok).toBe(false);
    expect(!bad.ok && (bad.error as ApiError).code).toBe("INVALID_ARGUMENT");
    const big = doPut.requestDeserialize(Buffer.alloc(2048)) as Decoded<unknown>;
    expect(!big.ok && big.error).toBeInstanceOf(LimitExceeded);
    const good = doPut.requestDeserialize(Buffer.from(toBinary(FlightDataSchema, create(FlightDataSchema, { dataBody: Uint8Array.of(1, 2) })))) as Decoded<{ dataBody: Uint8Array }>;
    expect(good.ok && Array.from(good.value.dataBody)).toEqual([1, 2]);
  });
});

describe("api pipeline", () => {
  it("pipeline - results are delivered in submission order whatever order they finish in", async () => {
    const out: number[] = [];
    const p = new OrderedPipeline<number>(8, (n) => out.push(n), () => {});
    const later = (n: number, ms: number) => new Promise<number>((r) => setTimeout(() => r(n), ms));
    p.submit(later(1, 30));
    p.submit(later(2, 5));
    p.submit(later(3, 15));
    await p.finished();
    expect(out).toEqual([1, 2, 3]);
  });

  it("pipeline - the first failure is reported once and stops later deliveries", async () => {
    const out: number[] = [];
    const errors: unknown[] = [];
    const p = new OrderedPipeline<number>(8, (n) => out.push(n), (e) => errors.push(e));
    p.submit(Promise.resolve(1));
    p.reject(new Error("bad"));
    p.submit(Promise.resolve(3));
    p.reject(new Error("worse"));
    await p.finished();
    expect(out).toEqual([1]);
    expect(errors.map((e) => (e as Error).message)).toEqual(["bad"]);
  });

  it("pipeline - whenSpace waits until a slot frees", async () => {
    let release!: (n: number) => void;
    const p = new OrderedPipeline<number>(1, () => {}, () => {});
    p.submit(new Promise((r) => (release = r)));
    expect(p.isFull).toBe(true);
    let spaced = false;
    void p.whenSpace().then(() => (spaced = true));
    await Promise.resolve();
    expect(spaced).toBe(false);
    release(1);
    await p.finished();
    expect(spaced).toBe(true);
  });
});

describe("api arrow output", () => {
  const spec = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
  const batch = tickBatchToRecordBatch(spec, { rows: 10, symbols: ["A"], symbolIndex: new Uint32Array(10), ts: Float64Array.from({ length: 10 }, (_, i) => i), values: [new Float64Array(10), new Float64Array(10)] });

  it("arrowout - batches are re-labelled with the declared schema; a different shape is INTERNAL", () => {
    // A declared schema whose dictionary id differs from the batch's: output must carry the declared id.
    const wal = walArrowSchema(spec);
    const declared = new Schema([new Field("sym", new Dictionary(new Utf8(), new Int32(), 42), false), ...wal.fields.slice(1)]);
    expect([...conform(declared, batch).dictionaries.keys()]).toEqual([42]);
    expect(() => conform(new Schema([new Field("x", new Float64())]), batch)).toThrowError(/differ from its declared result/);
  });

  it("arrowout - chunks cut at maxRows", () => {
    expect([...chunks(batch, 4)].map((b) => b.numRows)).toEqual([4, 4, 2]);
    expect([...chunks(batch, 100)].map((b) => b.numRows)).toEqual([10]);
  });
});

describe("ipc metadata fuzz", () => {
  it("ipc - random header bytes never hang and only throw checked errors", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    const limits = resolveLimits({});
    for (let i = 0; i < 20_000; i++) {
      const bytes = Uint8Array.from({ length: 8 + Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
      // Plausible roots make the walk reach deeper than random ones would.
      new DataView(bytes.buffer).setUint32(0, 4 + Math.floor(rnd() * 16) * 4, true);
      try {
        readMessageInfo(bytes, limits, "t");
      } catch (e) {
        if (!(e instanceof ApiError) && (e as { _tag?: string })._tag !== "IpcError" && !(e instanceof LimitExceeded)) throw e;
      }
    }
    expect(DEFAULT_LIMITS.maxColumns).toBeGreaterThan(0);
  });
});

describe("api auth headers", () => {
  const mdWith = (v?: string) => {
    const m = new Metadata();
    if (v !== undefined) m.set("authorization", v);
    return m;
  };

  it("auth - Bearer tokens are read case-insensitively; other schemes are refused", () => {
    expect(bearerOf(mdWith("Bearer px_abc"))).toBe("px_abc");
    expect(bearerOf(mdWith("bearer   px_abc"))).toBe("px_abc");
    expect(bearerOf(mdWith())).toBeUndefined();
    expect(() => bearerOf(mdWith("Token px_abc"))).toThrowError(AuthError);
    try {
      bearerOf(mdWith("Token px_secret_value"));
    } catch (e) {
      expect((e as Error).message).not.toContain("px_secret_value");
    }
  });

  it("auth - Basic credentials decode to user and password", () => {
    expect(basicOf(mdWith(`Basic ${Buffer.from("bob:px_a.b").toString("base64")}`))).toEqual({ user: "bob", password: "px_a.b" });
    expect(basicOf(mdWith("Bearer x"))).toBeUndefined();
    expect(() => basicOf(mdWith(`Basic ${Buffer.from("nocolon").toString("base64")}`))).toThrowError(AuthError);
  });

  it("auth - authorize follows the role order", () => {
    expect(() => authorize({ ...alpha, role: "reader" }, "ingest")).toThrowError(/ask an admin for a writer token/);
    expect(() => authorize({ ...alpha, role: "writer" }, "ingest")).not.toThrow();
    expect(() => authorize({ ...alpha, role: "writer" }, "manage")).toThrowError(AuthError);
  });
});
