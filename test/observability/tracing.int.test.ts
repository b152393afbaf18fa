// Tracing end to end: with sampling 1 and an in-memory exporter, one batch
// published through NATS yields the linked spans publisher -> gateway -> WAL
// append -> shard apply and sink INSERT, all with one trace id, each the
// child of the one before. With tracing off nothing is recorded.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import type { ProxistNode } from "../../src/node/node.js";
import { startTracing } from "../../src/node/obs/index.js";
import { credentials } from "@grpc/grpc-js";
import { ProxistClient, bearer } from "../../src/api/index.js";
import type { ClientDuplexStream } from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import { IngestBatchSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck } from "../../protocols/gen/proxist/v1/api_pb.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { createToken } from "../../src/auth/index.js";
import { query } from "../api/fixture.js";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";

const SPEC = parseClusterSpec({ tenants: [{ name: "trc", tables: [{ name: "trades", shards: 2, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] }] });

let f: NatsFixture;
let chf: ClickhouseFixture;
let node: ProxistNode;
const exporter = new InMemorySpanExporter();
let stopTracing: (() => Promise<void>) | undefined;

beforeAll(async () => {
  [f, chf] = await Promise.all([natsFixture(), clickhouseFixture()]);
  node = await nodeOn(f.server, f.nc, { clickhouseUrl: chf.server.httpUrl, grpcPort: 0, sink: { retry: { maxMs: 500 } } }, SPEC);
}, 120_000);

afterAll(async () => {
  await stopTracing?.();
  await node?.stop();
  await f?.close();
  await chf?.close();
});

const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

describe("tracing", () => {
  it("tracing - off: a batch records no span", async () => {
    const pub = new TickPublisher(f.nc, { tenant: "trc", spec: SPEC.tenants[0]!.tables[0]!, maxInFlight: 1 });
    await pub.publish(new RandomWalk(symbolNames(4), 1, 1.75e15).trades(10, 1000));
    expect(exporter.getFinishedSpans()).toEqual([]);
  });

  it("tracing - one batch yields linked spans publisher -> gateway -> WAL -> shard and sink with one trace id", async () => {
    stopTracing = startTracing({ sampleRatio: 1, exporter });
    const pub = new TickPublisher(f.nc, { tenant: "trc", spec: SPEC.tenants[0]!.tables[0]!, maxInFlight: 1 });
    const ack = await pub.publish(new RandomWalk(symbolNames(4), 2, 1.75e15).trades(50, 1000));
    const deadline = Date.now() + 60_000;
    const names = () => new Set(exporter.getFinishedSpans().map((s) => s.name));
    // Wait for every record of the batch: one apply and one insert per WAL record (a batch over several buckets
    // has several, and their sinks flush independently, so the first insert span is not the last).
    const lsns = (name: string) => new Set(exporter.getFinishedSpans().filter((s) => s.name === name).map((s) => s.attributes["px.lsn"]));
    const settled = () => {
      const applied = lsns("px.shard.apply");
      const inserted = lsns("px.sink.insert");
      return applied.size === ack.appends.length && inserted.size === applied.size;
    };
    while (!settled() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const spans = exporter.getFinishedSpans();
    const by = (name: string) => spans.filter((s) => s.name === name);
    const [publish] = by("px.publish");
    const [ingest] = by("px.gateway.ingest");
    const [wal] = by("px.wal.append");
    expect(publish && ingest && wal, `spans: ${[...names()].join(", ")}`).toBeTruthy();
    const traceId = publish!.spanContext().traceId;
    expect(spans.every((s) => s.spanContext().traceId === traceId)).toBe(true);
    expect(parentOf(ingest!)).toBe(publish!.spanContext().spanId);
    expect(parentOf(wal!)).toBe(ingest!.spanContext().spanId);
    const applies = by("px.shard.apply");
    const inserts = by("px.sink.insert");
    expect(applies.length).toBeGreaterThan(0);
    expect(inserts.length).toBeGreaterThan(0);
    for (const s of [...applies, ...inserts]) expect(parentOf(s)).toBe(wal!.spanContext().spanId);
    // The same LSNs: each applied record is the one its sink persisted.
    expect(new Set(inserts.map((s) => s.attributes["px.lsn"]))).toEqual(new Set(applies.map((s) => s.attributes["px.lsn"])));
  }, 90_000);

  it("tracing - a gRPC Ingest call's traceparent metadata: the gateway continues that trace (ingest, WAL append, shard apply)", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const parentId = "00f067aa0ba902b7";
    const client = new ProxistClient(`127.0.0.1:${node.grpcPort!}`, credentials.createInsecure());
    try {
      const md = bearer(await createToken(f.nc, { tenant: "trc", role: "writer" }));
      md.set("traceparent", `00-${traceId}-${parentId}-01`);
      const acks = await new Promise<IngestAck[]>((resolve, reject) => {
        const got: IngestAck[] = [];
        const call = client.ingest!(md) as ClientDuplexStream<unknown, IngestAck>;
        call.on("data", (a: IngestAck) => got.push(a));
        call.on("error", reject);
        call.on("end", () => resolve(got));
        call.write(create(IngestBatchSchema, { table: "trades", arrowIpc: tickBatchToIpc(SPEC.tenants[0]!.tables[0]!, new RandomWalk(symbolNames(4), 5, 1.75e15).trades(20, 1000)) }));
        call.end();
      });
      expect(acks).toHaveLength(1);
    } finally {
      client.close();
    }
    const deadline = Date.now() + 60_000;
    const inTrace = () => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    while (!inTrace().some((s) => s.name === "px.shard.apply") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const spans = inTrace();
    const ingest = spans.find((s) => s.name === "px.gateway.ingest");
    const wal = spans.find((s) => s.name === "px.wal.append");
    expect(ingest && parentOf(ingest)).toBe(parentId);
    expect(wal && parentOf(wal)).toBe(ingest!.spanContext().spanId);
    expect(spans.filter((s) => s.name === "px.shard.apply").every((s) => parentOf(s) === wal!.spanContext().spanId)).toBe(true);
  }, 90_000);

  it("tracing - a query over the API yields a px.query span with its operator, tier and rows", async () => {
    const client = new ProxistClient(`127.0.0.1:${node.grpcPort!}`, credentials.createInsecure());
    try {
      const r = await query(client, await createToken(f.nc, { tenant: "trc", role: "reader" }), { op: "lastBy", table: "trades" });
      expect(r.error).toBeUndefined();
    } finally {
      client.close();
    }
    const q = exporter.getFinishedSpans().find((s) => s.name === "px.query");
    expect(q?.attributes).toMatchObject({ "px.tenant": "trc", "px.op": "lastBy", "px.table": "trades" });
    expect(["hot", "cold", "fanout"]).toContain(q!.attributes["px.tier"]);
  }, 60_000);
});
