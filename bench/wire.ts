// Client-side plumbing shared by the benchmarks that drive a node over its
// wire APIs (bench:api, bench:ab): Flight DoGet and proxist.v1 Query read to
// the end, read-after-write waits, and NATS ingest through TickPublisher.
import { create } from "@bufbuild/protobuf";
import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import type { NatsConnection } from "@nats-io/transport-node";
import { TicketSchema } from "../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData } from "../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { QueryRequestSchema } from "../protocols/gen/proxist/v1/api_pb.js";
import type { QueryChunk } from "../protocols/gen/proxist/v1/api_pb.js";
import type { TableSpec } from "../protocols/tablespec.js";
import { DEFAULT_LIMITS, bearer } from "../src/api/index.js";
import type { ProxistClient } from "../src/api/index.js";
import { readMessageInfo } from "../src/api/ipc/index.js";
import { TickPublisher } from "../src/client/publisher.js";
import type { TickBatch } from "../src/codec/tickbatch.js";

export type Client = InstanceType<typeof ProxistClient>;

export interface Read {
  readonly seconds: number;
  readonly rows: number;
  readonly bytes: number;
}

const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Flight DoGet read to the end; rows from the record batch headers, bytes on the wire (header + body). */
export function doGet(client: Client, token: string, q: unknown): Promise<Read> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let rows = 0;
    let bytes = 0;
    const call = client.doGet!(create(TicketSchema, { ticket: utf8(JSON.stringify(q)) }), bearer(token)) as ClientReadableStream<FlightData>;
    call.on("data", (d: FlightData) => {
      bytes += d.dataHeader.length + d.dataBody.length;
      const info = readMessageInfo(d.dataHeader, DEFAULT_LIMITS, "DoGet");
      if (info.type === "recordBatch") rows += info.batch.rows;
    });
    call.on("error", reject);
    call.on("end", () => resolve({ seconds: (performance.now() - t0) / 1000, rows, bytes }));
  });
}

/** One Query call to its end; resolves with the rows. */
export function query(client: Client, token: string, q: unknown, deadlineMs = 60_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let rows = 0;
    const call = client.query!(create(QueryRequestSchema, { queryJson: JSON.stringify(q) }), bearer(token), { deadline: Date.now() + deadlineMs }) as ClientReadableStream<QueryChunk>;
    call.on("data", (c: QueryChunk) => (rows += c.rows));
    call.on("error", reject);
    call.on("end", () => resolve(rows));
  });
}

/** Waits until the node's shards of `table` applied `lsn` (the engine bounds one minLsn wait to 5 s). */
export async function waitApplied(client: Client, token: string, table: string, lsn: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  for (;;) {
    try {
      await query(client, token, { op: "lastBy", table, minLsn: lsn });
      return;
    } catch (e) {
      if (Date.now() > deadline || !/did not apply/.test((e as ServiceError).details ?? "")) throw e;
    }
  }
}

/** Publishes batches `from` .. `from + n - 1` (cycling) with `window` in flight; resolves with the seconds and the last LSN. */
export async function natsPublish(nc: NatsConnection, tenant: string, spec: TableSpec, batches: readonly TickBatch[], n: number, window: number): Promise<{ seconds: number; lastLsn: number }> {
  const pub = new TickPublisher(nc, { tenant, spec, maxInFlight: window });
  let next = 0;
  let lastLsn = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: window }, async () => {
      while (next < n) lastLsn = Math.max(lastLsn, (await pub.publish(batches[next++ % batches.length]!)).lastLsn);
    }),
  );
  return { seconds: (performance.now() - t0) / 1000, lastLsn };
}
