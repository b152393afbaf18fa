// Flight DoPut: the first FlightData names the table (descriptor) and carries
// the schema; each record batch is stored through the gateway and answered
// with a PutResult whose app_metadata is the JSON ack (rows, LSNs), in order.
// With a CMD descriptor {"producerId","firstSeq"} batch i gets producer seq
// firstSeq + i, so re-sending the same stream is stored once.
import { create } from "@bufbuild/protobuf";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { PutResultSchema } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightData, PutResult } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { IngestAck } from "../../../protocols/ingest.js";
import type { ApiContext } from "../context.js";
import type { Decoded } from "../grpcdef.js";
import { ingestBatch } from "../ingest.js";
import { serveIngestStream } from "../ingeststream.js";
import { tableSpec } from "../scope.js";
import { FlightIpcAssembler } from "./assembler.js";
import { putTarget } from "./descriptor.js";
import type { PutTarget } from "./descriptor.js";

const encoder = new TextEncoder();

/** The PutResult app_metadata of one stored batch. */
export interface PutAck {
  readonly batch: number;
  readonly rows: number;
  readonly firstLsn: number;
  readonly lastLsn: number;
  readonly duplicate: boolean;
}

const putAck = (batch: number, ack: IngestAck): PutAck => ({
  batch,
  rows: ack.rows,
  firstLsn: ack.firstLsn,
  lastLsn: ack.lastLsn,
  duplicate: ack.appends.length > 0 && ack.appends.every((a) => a.duplicate),
});

export function doPutHandler(ctx: ApiContext) {
  return (call: ServerDuplexStream<Decoded<FlightData>, PutResult>): void =>
    serveIngestStream(ctx, call, (principal, traceparent) => {
      let target: PutTarget | undefined;
      let assembler: FlightIpcAssembler | undefined;
      let batches = 0;
      return (fd) => {
        if (!target || !assembler) {
          target = putTarget(principal, fd.flightDescriptor);
          tableSpec(ctx.node.catalog(), principal, target.table);
          assembler = new FlightIpcAssembler(ctx.limits, `DoPut table ${target.table}`);
        }
        const batch = assembler.push(fd.dataHeader, fd.dataBody);
        if (!batch) return undefined;
        const i = batches++;
        const producer = target.producerId === undefined ? undefined : { id: target.producerId, seq: target.firstSeq + BigInt(i) };
        const work = ingestBatch(ctx.node, ctx.limits, { principal, table: target.table, payload: batch.payload, producer, checked: { compressed: batch.compressed }, traceparent });
        return work.then((ack) => create(PutResultSchema, { appMetadata: encoder.encode(JSON.stringify(putAck(i, ack))) }));
      };
    });
}
