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
import { authenticate, authorize } from "../auth.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { ingestBatch } from "../ingest.js";
import { OrderedPipeline } from "../pipeline.js";
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
  return (call: ServerDuplexStream<Decoded<FlightData>, PutResult>): void => {
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "ingest");
      const pipeline = new OrderedPipeline<PutAck>(
        ctx.limits.maxInFlightBatches,
        (ack) => call.write(create(PutResultSchema, { appMetadata: encoder.encode(JSON.stringify(ack)) })),
        (e) => failCall(ctx, call, e),
      );
      let target: PutTarget | undefined;
      let assembler: FlightIpcAssembler | undefined;
      let batches = 0;
      call.on("cancelled", () => pipeline.abandon());
      call.on("data", (d: Decoded<FlightData>) => {
        if (pipeline.hasFailed) return;
        try {
          const fd = unwrap(d);
          if (!target || !assembler) {
            target = putTarget(principal, fd.flightDescriptor);
            tableSpec(ctx.node.catalog(), principal, target.table);
            assembler = new FlightIpcAssembler(ctx.limits, `DoPut table ${target.table}`);
          }
          const batch = assembler.push(fd.dataHeader, fd.dataBody);
          if (batch) {
            const i = batches++;
            const producer = target.producerId === undefined ? undefined : { id: target.producerId, seq: target.firstSeq + BigInt(i) };
            const work = ingestBatch(ctx.node, ctx.limits, { principal, table: target.table, payload: batch.payload, producer, checked: { compressed: batch.compressed } });
            pipeline.submit(work.then((ack) => putAck(i, ack)));
          }
        } catch (e) {
          pipeline.reject(e);
        }
        if (pipeline.isFull) {
          call.pause();
          void pipeline.whenSpace().then(() => call.resume());
        }
      });
      call.on("end", () => {
        void pipeline.finished().then(() => {
          if (!pipeline.hasFailed) call.end();
        });
      });
    })().catch((e: unknown) => failCall(ctx, call, e));
  };
}
