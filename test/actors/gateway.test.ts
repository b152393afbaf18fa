// Gateway machine with fake IO and a simulated clock: admission, acks,
// back-pressure, WAL failures and recovery. No NATS here.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback, initialTransition, transition } from "xstate";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { gatewayMachine } from "../../actors/gateway.js";
import type { AppendRef, GatewayEvent, IngestRequest, SourceCommand, WalCommand } from "../../actors/gateway.js";
import { catalogOfCluster, lookupTable } from "../../src/catalog.js";
import { encodeTickIpcByBucket } from "../../src/codec/ipcwrite.js";
import { BytePool } from "../../src/codec/pool.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { decodeWalRecord } from "../../protocols/codec.js";

function harness(maxInFlight = 4, loadCatalog = true, recordPool?: BytePool) {
  const replies: SourceCommand[] = [];
  const appends: WalCommand[] = [];
  let send: (e: GatewayEvent) => void = () => {};
  const clock = new SimulatedClock();
  const actor = createActor(
    gatewayMachine.provide({
      actors: {
        source: fromCallback<SourceCommand>(({ receive, sendBack }) => {
          send = sendBack;
          receive((c) => replies.push(c));
        }),
        wal: fromCallback<WalCommand>(({ receive }) => {
          receive((c) => appends.push(c));
        }),
      },
    }),
    { input: { maxInFlight, ...(recordPool === undefined ? {} : { recordPool }) }, clock },
  );
  actor.start();
  if (loadCatalog) send({ type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
  return { actor, replies, appends, clock, send: (e: GatewayEvent) => send(e) };
}

let nextId = 1;
const payload = (syms: string[]) =>
  tableToIPC(
    tableFromArrays({
      sym: syms,
      ts: BigInt64Array.from(syms, (_, i) => 1_700_000_000_000_000n + BigInt(i)),
      price: Float64Array.from(syms, () => 1),
      size: Float64Array.from(syms, () => 2),
    }),
    "stream",
  );
const request = (over: Partial<IngestRequest> = {}): IngestRequest => ({
  id: nextId++,
  tenant: "default",
  table: "trades",
  payload: payload(["AAPL", "MSFT", "IBM", "AAPL"]),
  producer: { id: "p", seq: 1n },
  wantsReply: true,
  ...over,
});

describe("gateway machine", () => {
  it("loading - before the first catalog, batches are refused as retryable, not as unknown tables", () => {
    const h = harness(4, false);
    expect(h.actor.getSnapshot().value).toBe("loading");
    h.send({ type: "ingest", request: request() });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "UNAVAILABLE", retryable: true } });
    h.send({ type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
    expect(h.actor.getSnapshot().value).toBe("ready");
    h.send({ type: "ingest", request: request() });
    expect(h.appends).toHaveLength(1);
  });

  it("admit - a valid batch becomes one WAL append per bucket and is acked with the LSN range", () => {
    const h = harness();
    const r = request();
    h.send({ type: "ingest", request: r });
    expect(h.appends).toHaveLength(1);
    const plans = h.appends[0]!.plans;
    expect(plans.reduce((n, p) => n + p.rows, 0)).toBe(4);
    for (const p of plans) {
      const rec = decodeWalRecord(p.record);
      expect(p.subject).toBe(`px.default.wal.trades.${rec.bucket}`);
      expect(p.msgId).toBe(`p:1:trades:${rec.bucket}`);
    }
    expect(h.replies).toHaveLength(0); // no ack before the WAL stored it
    h.send({ type: "appended", batch: h.appends[0]!.batch, appends: plans.map((p, i) => ({ bucket: p.bucket, lsn: 10 + i, rows: p.rows, duplicate: false })) });
    expect(h.replies).toHaveLength(1);
    expect(h.replies[0]!.reply).toMatchObject({ ok: true, rows: 4, firstLsn: 10, lastLsn: 10 + plans.length - 1 });
    expect(h.actor.getSnapshot().context.stats).toMatchObject({ acceptedBatches: 1, acceptedRows: 4 });
  });

  it("reject - bad input is answered at once and nothing is appended", () => {
    const h = harness();
    h.send({ type: "ingest", request: request({ payload: Uint8Array.of(1, 2, 3) }) });
    h.send({ type: "ingest", request: request({ table: "nope" }) });
    h.send({ type: "ingest", request: request({ envelopeError: "header Px-Producer-Seq is bad" }) });
    expect(h.appends).toHaveLength(0);
    expect(h.replies.map((r) => (r.reply.ok ? "ok" : r.reply.error.code))).toEqual(["INVALID_ARGUMENT", "NOT_FOUND", "INVALID_ARGUMENT"]);
    expect(h.actor.getSnapshot().value).toBe("ready");
  });

  it("back-pressure - at maxInFlight the gateway throttles, and recovers when acks drain", () => {
    const h = harness(2);
    const a = request();
    const b = request();
    h.send({ type: "ingest", request: a });
    h.send({ type: "ingest", request: b });
    expect(h.actor.getSnapshot().value).toBe("throttled");
    h.send({ type: "ingest", request: request() });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", retryable: true } });
    expect(h.appends).toHaveLength(2);
    h.send({ type: "appended", batch: h.appends[0]!.batch, appends: [{ bucket: 0, lsn: 1, rows: 4, duplicate: false }] });
    expect(h.actor.getSnapshot().value).toBe("ready");
  });

  it("degraded - a failed append is nacked as retryable, new batches are refused, then it probes again", () => {
    const h = harness();
    const a = request();
    h.send({ type: "ingest", request: a });
    h.send({ type: "appendFailed", batch: h.appends[0]!.batch, message: "TIMEOUT" });
    expect(h.actor.getSnapshot().value).toBe("degraded");
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "UNAVAILABLE", retryable: true } });
    h.send({ type: "ingest", request: request() });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "UNAVAILABLE" } });
    expect(h.appends).toHaveLength(1);
    h.clock.increment(499);
    expect(h.actor.getSnapshot().value).toBe("degraded");
    h.clock.increment(1);
    expect(h.actor.getSnapshot().value).toBe("ready");
    h.send({ type: "ingest", request: request() });
    expect(h.appends).toHaveLength(2);
  });

  it("catalog - a table applied later is accepted once the catalog event arrives", () => {
    const h = harness();
    h.send({ type: "catalog", catalog: new Map() });
    h.send({ type: "ingest", request: request() });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "NOT_FOUND" } });
    h.send({ type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
    h.send({ type: "ingest", request: request() });
    expect(h.appends).toHaveLength(1);
  });

  it("pure - a transition returns a new context and leaves the previous snapshot as it was", () => {
    const [s0] = initialTransition(gatewayMachine, { maxInFlight: 4 });
    const [s1] = transition(gatewayMachine, s0, { type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
    const r = request();
    const [s2, sent] = transition(gatewayMachine, s1, { type: "ingest", request: r });
    expect(s2.context.inFlight).toBe(1);
    expect(s1.context.inFlight).toBe(0);
    // The append is an action to run, not something that happened while computing the transition.
    expect(sent.map((a) => a.type)).toContain("xstate.sendTo");
    const batch: AppendRef = { id: r.id, tenant: "default", table: "trades", wantsReply: true, rows: 4 };
    const [s3] = transition(gatewayMachine, s2, { type: "appended", batch, appends: [{ bucket: 0, lsn: 5, rows: 4, duplicate: false }] });
    expect(s3.context).toMatchObject({ inFlight: 0, stats: { acceptedBatches: 1, acceptedRows: 4 } });
    expect(s2.context.stats.acceptedBatches).toBe(0);
    expect(s2.context.stats).not.toBe(s3.context.stats);
    const [s4] = transition(gatewayMachine, s3, { type: "ingest", request: request({ table: "nope" }) });
    expect(s4.context.stats.rejectedBatches).toBe(1);
    expect(s3.context.stats.rejectedBatches).toBe(0);
  });

  it("acks - each batch travels with its append: answers in any order reach the right requester", () => {
    const h = harness();
    const a = request({ payload: payload(["AAPL"]) });
    const b = request({ payload: payload(["MSFT", "IBM"]) });
    h.send({ type: "ingest", request: a });
    h.send({ type: "ingest", request: b });
    expect(h.actor.getSnapshot().context.inFlight).toBe(2);
    const [ca, cb] = h.appends;
    h.send({ type: "appended", batch: cb!.batch, appends: [{ bucket: 1, lsn: 8, rows: 2, duplicate: false }] });
    h.send({ type: "appendFailed", batch: ca!.batch, message: "TIMEOUT" });
    expect(h.replies.map((r) => [r.id, r.reply.ok])).toEqual([
      [b.id, true],
      [a.id, false],
    ]);
    expect(h.replies[0]!.reply).toMatchObject({ rows: 2, firstLsn: 8, lastLsn: 8 });
    expect(h.actor.getSnapshot().context).toMatchObject({ inFlight: 0, stats: { acceptedBatches: 1, acceptedRows: 2, failedAppends: 1 } });
  });

  it("WAL full - an append refused as full answers RESOURCE_EXHAUSTED naming the cause, and so does every batch until one is stored", () => {
    const h = harness();
    h.send({ type: "ingest", request: request() });
    h.send({ type: "appendFailed", batch: h.appends[0]!.batch, message: "maximum bytes exceeded", walFull: "the WAL stream reached its byte limit" });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED", retryable: true } });
    expect(JSON.stringify(h.replies.at(-1)!.reply)).toMatch(/the WAL is full \(the WAL stream reached its byte limit\).*nothing already acknowledged was dropped/);
    expect(h.actor.getSnapshot().context.walFull).toBe("the WAL stream reached its byte limit");
    h.send({ type: "ingest", request: request() });
    expect(h.replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "RESOURCE_EXHAUSTED" } });
    h.clock.increment(500);
    h.send({ type: "ingest", request: request() });
    h.send({ type: "appended", batch: h.appends.at(-1)!.batch, appends: [{ bucket: 0, lsn: 9, rows: 4, duplicate: false }] });
    expect(h.actor.getSnapshot().context.walFull).toBeUndefined();
  });

  it("buffers - WAL records of a batch in WAL layout are built in a buffer of the record pool given as input", () => {
    const pool = new BytePool();
    const h = harness(4, true, pool);
    const found = lookupTable(catalogOfCluster(DEFAULT_CLUSTER_SPEC), "default", "trades");
    if (!found.ok) throw new Error(found.message);
    const spec = found.spec;
    const rows = 8;
    const symbols = ["AAPL", "MSFT", "IBM", "ZZ"];
    const tick = {
      rows,
      symbols,
      symbolIndex: Uint32Array.from({ length: rows }, (_, i) => i % symbols.length),
      ts: Float64Array.from({ length: rows }, (_, i) => 1_700_000_000_000_000 + i),
      values: [new Float64Array(rows).fill(1), new Float64Array(rows).fill(2)],
    };
    h.send({ type: "ingest", request: request({ payload: encodeTickIpcByBucket(spec, tick, spec.shards) }) });
    const plans = h.appends[0]!.plans;
    expect(plans.reduce((n, p) => n + p.rows, 0)).toBe(rows);
    const buf = plans[0]!.record.buffer;
    // One pooled buffer per batch; the pool takes back only what it lent (as the wal actor does once stored).
    for (const p of plans) expect(p.record.buffer).toBe(buf);
    pool.release(buf);
    expect(pool.acquire(16).buffer).toBe(buf);
  });
});
