// The one way the SQL front end says no: a QueryError INVALID_ARGUMENT that
// names the construct it met and the form that does what the user wanted.
import { QueryError } from "../../protocols/errors.js";

export function refuse(construct: string, alternative: string): QueryError {
  return new QueryError("INVALID_ARGUMENT", `SQL: ${construct} is not supported; ${alternative}`);
}

/** A clause that is supported but written wrongly. */
export function malformed(what: string, fix: string): QueryError {
  return new QueryError("INVALID_ARGUMENT", `SQL: ${what}; ${fix}`);
}
