// proxist.v1.Proxist/Status: what a client of one tenant may know about it:
// its tables (from the catalog), its WAL position and the persisted watermark
// of each shard (last value per subject of the tenant's watermark stream).
import { create } from "@bufbuild/protobuf";
import { grantedTables } from "../scope.js";
import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import type { JetStreamManager } from "@nats-io/jetstream";
import { ShardWatermarkSchema, StatusReplySchema } from "../../../protocols/gen/proxist/v1/api_pb.js";
import type { ShardWatermark, StatusReply, StatusRequest } from "../../../protocols/gen/proxist/v1/api_pb.js";
import { decodeWatermark } from "../../../protocols/codec.js";
import { walStream, watermarkStream, watermarkSubject } from "../../../protocols/subjects.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { authenticate, authorize } from "../auth.js";
import { failUnary } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";

async function walState(jsm: JetStreamManager, tenant: string): Promise<{ lastLsn: bigint; records: bigint; bytes: bigint }> {
  try {
    const info = await jsm.streams.info(walStream(tenant));
    return { lastLsn: BigInt(info.state.last_seq), records: BigInt(info.state.messages), bytes: BigInt(info.state.bytes) };
  } catch {
    // No stream yet: the tenant has never been served by a node.
    return { lastLsn: 0n, records: 0n, bytes: 0n };
  }
}

async function watermarks(jsm: JetStreamManager, tenant: string, tables: readonly TableSpec[]): Promise<ShardWatermark[]> {
  const shards = tables.flatMap((t) => Array.from({ length: t.shards }, (_, bucket) => ({ table: t.name, bucket })));
  const found = await Promise.all(
    shards.map(async ({ table, bucket }) => {
      try {
        const msg = await jsm.streams.getMessage(watermarkStream(tenant), { last_by_subj: watermarkSubject(tenant, table, bucket) });
        if (!msg) return undefined;
        const wm = decodeWatermark(msg.data);
        return { table, bucket, persistedLsn: wm.persistedLsn, tPersistedMicros: wm.tPersistedMicros };
      } catch {
        // Nothing persisted yet for this shard (or an unreadable record): report it as absent.
        return undefined;
      }
    }),
  );
  return found.filter((w) => w !== undefined).map((w) => create(ShardWatermarkSchema, w));
}

export function statusHandler(ctx: ApiContext) {
  return (call: ServerUnaryCall<Decoded<StatusRequest>, StatusReply>, callback: sendUnaryData<StatusReply>): void => {
    void (async () => {
      const principal = await authenticate(ctx.tokens, call.metadata);
      authorize(principal, "query");
      unwrap(call.request);
      const tables = [...(ctx.node.catalog().get(principal.tenant)?.values() ?? [])].filter((t) => grantedTables(principal, [t.name]).length > 0).sort((a, b) => a.name.localeCompare(b.name));
      const jsm = await ctx.jsm();
      const [wal, wms] = await Promise.all([walState(jsm, principal.tenant), watermarks(jsm, principal.tenant, tables)]);
      callback(
        null,
        create(StatusReplySchema, {
          tenant: principal.tenant,
          role: principal.role,
          nodeId: ctx.node.nodeId,
          gatewayState: ctx.node.state(),
          tables: tables.map((t) => ({
            name: t.name,
            version: t.version,
            symbolColumn: t.symbolColumn,
            timeColumn: t.timeColumn,
            columns: t.columns.map((c) => ({ name: c.name, type: c.type })),
            shards: t.shards,
            maxBatchRows: t.maxBatchRows,
          })),
          walLastLsn: wal.lastLsn,
          walRecords: wal.records,
          walBytes: wal.bytes,
          watermarks: wms,
        }),
      );
    })().catch((e: unknown) => failUnary(ctx, callback, e));
  };
}
