// proxist.v1.Proxist/Ingest: a bidirectional stream; each IngestBatch is
// stored through the gateway and acked, in order, with its LSNs. Up to
// maxInFlightBatches are stored at once; beyond that the call stops reading
// (HTTP/2 flow control pushes back on the client).
import { create } from "@bufbuild/protobuf";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { IngestAckSchema } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck, IngestBatch } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck as GatewayAck } from "../../../protocols/ingest.js";
import { authenticate, authorize } from "../auth.js";
import { failCall } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { ingestBatch, producerOf } from "../ingest.js";
import { OrderedPipeline } from "../pipeline.js";
import { scopedTable } from "../scope.js";

interface Acked {
  readonly index: bigint;
  readonly batch: IngestBatch;
  readonly ack: GatewayAck;
}

function ackMessage({ index, batch, ack }: Acked): IngestAck {
  return create(IngestAckSchema, {
    batchIndex: index,
    table: ack.table,
    producerId: batch.producerId,
    producerSeq: batch.producerSeq,
    rows: ack.rows,
    firstLsn: BigInt(ack.firstLsn),
    lastLsn: BigInt(ack.lastLsn),
    appends: ack.appends.map((a) => ({ bucket: a.bucket, lsn: BigInt(a.lsn), rows: a.rows, duplicate: a.duplicate })),
  });
}

export function ingestHandler(ctx: ApiContext) {
  return (call: ServerDuplexStream<Decoded<IngestBatch>, IngestAck>): void => {
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "ingest");
      const pipeline = new OrderedPipeline<Acked>(
        ctx.limits.maxInFlightBatches,
        (acked) => call.write(ackMessage(acked)),
        (e) => failCall(ctx, call, e),
      );
      let index = 0n;
      call.on("cancelled", () => pipeline.abandon());
      call.on("data", (d: Decoded<IngestBatch>) => {
        if (pipeline.hasFailed) return;
        const i = index++;
        try {
          const batch = unwrap(d);
          const table = scopedTable(principal, [batch.table]);
          const producer = producerOf(batch.producerId, batch.producerSeq);
          const work = ingestBatch(ctx.node, ctx.limits, { principal, table, payload: batch.arrowIpc, producer, checked: undefined });
          pipeline.submit(work.then((ack) => ({ index: i, batch, ack })));
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
