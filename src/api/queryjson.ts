// The JSON query form as it arrives (gRPC query_json, Flight ticket or cmd).
// Parsed here, checked for tenant scope and table grants; the engine validates the rest.
import type { Principal } from "../auth/index.js";
import { ApiError } from "./errors.js";
import { checkQueryScope } from "./scope.js";

const utf8 = new TextDecoder("utf-8", { fatal: true });

export function parseQuery(p: Principal, json: string | Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = typeof json === "string" ? json : utf8.decode(json);
  } catch {
    throw new ApiError("INVALID_ARGUMENT", `${what} is not UTF-8 text; send the query as JSON`);
  }
  if (text.trim() === "") throw new ApiError("INVALID_ARGUMENT", `${what} is empty; send a JSON query, e.g. {"table":"trades","t0":0,"t1":1700000000000000}`);
  let query: unknown;
  try {
    query = JSON.parse(text);
  } catch (e) {
    throw new ApiError("INVALID_ARGUMENT", `${what} is not valid JSON (${(e as Error).message}); send a JSON query object`);
  }
  if (typeof query !== "object" || query === null || Array.isArray(query)) {
    throw new ApiError("INVALID_ARGUMENT", `${what} must be a JSON object describing a query`);
  }
  checkQueryScope(p, query);
  return query;
}
