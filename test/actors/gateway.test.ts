// Gateway machine with fake IO and a simulated clock: admission, acks,
// back-pressure, WAL failures and recovery. No NATS here.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromCallback } from "xstate";
import { tableFromArrays, tableToIPC } from "apache-arrow";
import { gatewayMachine } from "../../actors/gateway.js";
import type { GatewayEvent, IngestRequest, SourceCommand, WalCommand } from "../../actors/gateway.js";
import { catalogOfCluster } from "../../src/catalog.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { decodeWalRecord } from "../../protocols/codec.js";

function harness(maxInFlight = 4, loadCatalog = true) {
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
    { input: { maxInFlight }, clock },
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
    h.send({ type: "appended", id: r.id, appends: plans.map((p, i) => ({ bucket: p.bucket, lsn: 10 + i, rows: p.rows, duplicate: false })) });
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
    h.send({ type: "appended", id: a.id, appends: [{ bucket: 0, lsn: 1, rows: 4, duplicate: false }] });
    expect(h.actor.getSnapshot().value).toBe("ready");
  });

  it("degraded - a failed append is nacked as retryable, new batches are refused, then it probes again", () => {
    const h = harness();
    const a = request();
    h.send({ type: "ingest", request: a });
    h.send({ type: "appendFailed", id: a.id, message: "TIMEOUT" });
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
});
