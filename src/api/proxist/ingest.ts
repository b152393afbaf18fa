// proxist.v1.Proxist/Ingest: a bidirectional stream; each IngestBatch is
// stored through the gateway and acked, in order, with its LSNs (the stream
// handling, back-pressure included, is ../ingeststream.ts, shared with DoPut).
import { create } from "@bufbuild/protobuf";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { IngestAckSchema } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck, IngestBatch } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { IngestAck as GatewayAck } from "../../../protocols/ingest.js";
import type { ApiContext } from "../context.js";
import type { Decoded } from "../grpcdef.js";
import { ingestBatch, producerOf } from "../ingest.js";
import { serveIngestStream } from "../ingeststream.js";
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
  return (call: ServerDuplexStream<Decoded<IngestBatch>, IngestAck>): void =>
    serveIngestStream(ctx, call, (principal, traceparent) => {
      let index = 0n;
      return (batch) => {
        const i = index++;
        const table = scopedTable(principal, [batch.table]);
        const producer = producerOf(batch.producerId, batch.producerSeq);
        return ingestBatch(ctx.node, ctx.limits, { principal, table, payload: batch.arrowIpc, producer, checked: undefined, traceparent }).then((ack) => ackMessage({ index: i, batch, ack }));
      };
    });
}
