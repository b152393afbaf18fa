// Flight SQL actions over DoAction: CreatePreparedStatement (compiles the
// statement now, so a bad one fails at prepare time, and answers its result
// schema and a handle) and ClosePreparedStatement (checks the handle; there is
// nothing to free, see statement.ts). Other actions are refused by name.
import { create } from "@bufbuild/protobuf";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { Schema } from "apache-arrow";
import { ActionTypeSchema, ResultSchema } from "../../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { Action, ActionType, Result } from "../../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { ActionCreatePreparedStatementResultSchema } from "../../../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";
import { schemaMessage } from "../../arrowout.js";
import { authenticate, authorize } from "../../auth.js";
import { failCall } from "../../context.js";
import type { ApiContext } from "../../context.js";
import { ApiError } from "../../errors.js";
import { unwrap } from "../../grpcdef.js";
import type { Decoded } from "../../grpcdef.js";
import { encapsulate } from "../../ipc/index.js";
import { flightSqlCommand, packSql } from "./command.js";
import type { SqlCommand } from "./command.js";
import { preparedHandle, preparedSql, statementQuery } from "./statement.js";

export const ACTIONS: readonly { readonly type: string; readonly description: string }[] = [
  { type: "CreatePreparedStatement", description: "Flight SQL: prepare a SQL statement (body: Any of ActionCreatePreparedStatementRequest); parameters are not bound" },
  { type: "ClosePreparedStatement", description: "Flight SQL: close a prepared statement (body: Any of ActionClosePreparedStatementRequest)" },
];

/** An encapsulated schema with no fields: the statement takes no parameters. */
const NO_PARAMETERS = encapsulate(schemaMessage(new Schema([])).header);

function bodyOf<K extends "createPrepared" | "closePrepared">(action: Action, kind: K, message: string): Extract<SqlCommand, { kind: K }> {
  const c = flightSqlCommand(action.body, `the ${action.type} body`);
  if (c?.kind === kind) return c as Extract<SqlCommand, { kind: K }>;
  throw new ApiError("INVALID_ARGUMENT", `the ${action.type} action body must be a google.protobuf.Any of arrow.flight.protocol.sql.${message}`);
}

export function doActionHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<Decoded<Action>, Result>): void => {
    void (async () => {
      const p = await authenticate(ctx.tokens, call.metadata);
      authorize(p, "query");
      const action = unwrap(call.request);
      if (action.type === "CreatePreparedStatement") {
        const { sql } = bodyOf(action, "createPrepared", "ActionCreatePreparedStatementRequest");
        const query = statementQuery(ctx.node.catalog(), p, sql);
        const schema = await ctx.engine.schema(p.tenant, query);
        const result = create(ActionCreatePreparedStatementResultSchema, {
          preparedStatementHandle: preparedHandle(sql),
          datasetSchema: encapsulate(schemaMessage(schema).header),
          parameterSchema: NO_PARAMETERS,
          isUpdate: false,
        });
        call.write(create(ResultSchema, { body: packSql(ActionCreatePreparedStatementResultSchema, result) }));
      } else if (action.type === "ClosePreparedStatement") {
        preparedSql(bodyOf(action, "closePrepared", "ActionClosePreparedStatementRequest").handle);
      } else {
        throw new ApiError("UNIMPLEMENTED", `the action "${action.type.slice(0, 60)}" is not offered by Proxist; its actions are ${ACTIONS.map((a) => a.type).join(" and ")} (Flight SQL)`);
      }
      call.end();
    })().catch((e: unknown) => failCall(ctx, call, e));
  };
}

export function listActionsHandler(ctx: ApiContext) {
  return (call: ServerWritableStream<unknown, ActionType>): void => {
    void (async () => {
      await authenticate(ctx.tokens, call.metadata);
      for (const a of ACTIONS) call.write(create(ActionTypeSchema, a));
      call.end();
    })().catch((e: unknown) => failCall(ctx, call, e));
  };
}
