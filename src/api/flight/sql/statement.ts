// Flight SQL statements: SQL text -> the JSON query (src/sql compileSql, the
// same compiler as POST /v1/query), and prepared statement handles. A handle
// is the statement text itself behind a version tag, so it is redeemable on
// any node and closing it frees nothing (there is no server state to leak);
// the statement is compiled again against the current catalog at each run.
import type { Principal } from "../../../auth/index.js";
import { functionKinds } from "../../../catalog.js";
import type { Catalog } from "../../../catalog.js";
import { compileSql } from "../../../sql/index.js";
import { ApiError } from "../../errors.js";
import { checkQueryScope } from "../../scope.js";

const HANDLE_TAG = "pxsql1\n";
const encoder = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Offset of the first `?` or `$n` placeholder outside quotes, or -1. */
export function placeholderAt(sql: string): number {
  let quote: string | undefined;
  for (let i = 0; i < sql.length; i++) {
    const c = sql[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "?" || (c === "$" && /[0-9]/.test(sql[i + 1] ?? ""))) return i;
  }
  return -1;
}

/** The JSON query a SQL statement compiles to for `p`'s tenant. Throws QueryError / ApiError naming the problem. */
export function statementQuery(catalog: Catalog, p: Principal, sql: string): Record<string, unknown> {
  const at = placeholderAt(sql);
  if (at >= 0) {
    throw new ApiError(
      "INVALID_ARGUMENT",
      `SQL: the parameter placeholder "${sql[at]}" at offset ${at} is not supported; Proxist's Flight SQL binds no parameters, so write the values into the statement text (WHERE sym IN ('AAPL') AND ts >= '2024-01-02T14:30:00Z')`,
    );
  }
  const tables = (name: string) => catalog.get(p.tenant)?.get(name.split(".").pop()!);
  const compiled = compileSql(sql, tables, undefined, functionKinds(catalog, p.tenant));
  if (compiled.explain) {
    throw new ApiError("INVALID_ARGUMENT", "SQL: EXPLAIN is not answered over Flight SQL; send it to POST /v1/query or `pxctl query`, which show the plan");
  }
  checkQueryScope(p, compiled.query);
  return compiled.query;
}

export function preparedHandle(sql: string): Uint8Array {
  return encoder.encode(HANDLE_TAG + sql);
}

/** The statement text of a handle made by preparedHandle. */
export function preparedSql(handle: Uint8Array): string {
  let text: string | undefined;
  try {
    text = utf8.decode(handle);
  } catch {
    text = undefined;
  }
  if (text === undefined || !text.startsWith(HANDLE_TAG)) {
    throw new ApiError("INVALID_ARGUMENT", "the prepared_statement_handle was not made by Proxist's CreatePreparedStatement; prepare the statement again and use the handle it returns");
  }
  return text.slice(HANDLE_TAG.length);
}
