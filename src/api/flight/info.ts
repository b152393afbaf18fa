// Flight metadata calls: GetFlightInfo, PollFlightInfo, GetSchema and
// ListFlights (one FlightInfo per table of the token's tenant). A FlightInfo
// has one endpoint whose ticket is the JSON query, redeemable on any node; a
// Flight SQL command descriptor is planned by ./sql (a statement's ticket is
// its JSON query too, so its DoGet is the plain one).
import { create } from "@bufbuild/protobuf";
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from "@grpc/grpc-js";
import {
  FlightDescriptorSchema,
  FlightDescriptor_DescriptorType,
  FlightInfoSchema,
  PollInfoSchema,
  SchemaResultSchema,
} from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { Criteria, FlightDescriptor, FlightInfo, PollInfo, SchemaResult } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { Schema } from "apache-arrow";
import type { Principal } from "../../auth/index.js";
import { encapsulate } from "../ipc/index.js";
import { schemaMessage } from "../arrowout.js";
import { authenticate, authorize } from "../auth.js";
import { failCall, failUnary } from "../context.js";
import type { ApiContext } from "../context.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";
import { grantedTables, tableSpec } from "../scope.js";
import { descriptorQuery } from "./descriptor.js";
import { flightSqlCommand, sqlPlan } from "./sql/index.js";

const encoder = new TextEncoder();

/** The result schema of descriptor `d` and the ticket that reads it. */
async function planOf(ctx: ApiContext, p: Principal, d: FlightDescriptor): Promise<{ schema: Schema; ticket: Uint8Array }> {
  const sql = d.type === FlightDescriptor_DescriptorType.CMD ? flightSqlCommand(d.cmd, "the descriptor command") : undefined;
  if (sql !== undefined) return sqlPlan(ctx, p, sql, d.cmd);
  const { query, table } = descriptorQuery(p, d, ctx.engine);
  if (table !== undefined) tableSpec(ctx.node.catalog(), p, table);
  return { schema: await ctx.engine.schema(p.tenant, query), ticket: encoder.encode(JSON.stringify(query)) };
}

async function flightInfo(ctx: ApiContext, p: Principal, d: FlightDescriptor): Promise<FlightInfo> {
  const { schema, ticket } = await planOf(ctx, p, d);
  return create(FlightInfoSchema, {
    schema: encapsulate(schemaMessage(schema).header),
    flightDescriptor: d,
    endpoint: [{ ticket: { ticket }, location: [] }],
    totalRecords: -1n,
    totalBytes: -1n,
    ordered: true,
  });
}

async function principalFor(ctx: ApiContext, call: { readonly metadata: Metadata }): Promise<Principal> {
  const p = await authenticate(ctx.tokens, call.metadata);
  authorize(p, "query");
  return p;
}

export function getFlightInfoHandler(ctx: ApiContext) {
  return (call: ServerUnaryCall<Decoded<FlightDescriptor>, FlightInfo>, callback: sendUnaryData<FlightInfo>): void => {
    void (async () => {
      const p = await principalFor(ctx, call);
      callback(null, await flightInfo(ctx, p, unwrap(call.request)));
    })().catch((e: unknown) => failUnary(ctx, callback, e));
  };
}

export function pollFlightInfoHandler(ctx: ApiContext) {
  return (call: ServerUnaryCall<Decoded<FlightDescriptor>, PollInfo>, callback: sendUnaryData<PollInfo>): void => {
    void (async () => {
      const p = await principalFor(ctx, call);
      // Queries are answered by DoGet directly, so the info is complete at once (no retry descriptor).
      callback(null, create(PollInfoSchema, { info: await flightInfo(ctx, p, unwrap(call.request)), progress: 1 }));
    })().catch((e: unknown) => failUnary(ctx, callback, e));
  };
}

export function getSchemaHandler(ctx: ApiContext) {
  return (call: ServerUnaryCall<Decoded<FlightDescriptor>, SchemaResult>, callback: sendUnaryData<SchemaResult>): void => {
    void (async () => {
      const p = await principalFor(ctx, call);
      const { schema } = await planOf(ctx, p, unwrap(call.request));
      callback(null, create(SchemaResultSchema, { schema: encapsulate(schemaMessage(schema).header) }));
    })().catch((e: unknown) => failUnary(ctx, callback, e));
  };
}

export function listFlightsHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<Criteria>, FlightInfo>): void => {
    void (async () => {
      const p = await principalFor(ctx, call);
      const criteria = unwrap(call.request);
      // The criteria expression, if any, is a table-name prefix.
      const prefix = new TextDecoder().decode(criteria.expression);
      const tables = grantedTables(p, ctx.node.catalog().get(p.tenant)?.keys() ?? []).filter((t) => t.startsWith(prefix)).sort();
      for (const table of tables) {
        call.write(await flightInfo(ctx, p, create(FlightDescriptorSchema, { type: FlightDescriptor_DescriptorType.PATH, path: [table] })));
      }
      call.end();
    })().catch((e: unknown) => failCall(ctx, call, e));
  };
}
