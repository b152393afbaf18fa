// What the UDF engine tests assert with: a result column by name, values equal
// to a relative 1e-9 (nulls equal), and the QueryError a query ends with.
import { expect } from "vitest";
import { QueryError } from "../../protocols/errors.js";
import type { OutTable, ProxistQueryEngine } from "../../src/query/index.js";
import { TENANT } from "../query/fixture.js";
import { outRows } from "../query/oracle.js";

/** The rows of a column by name. */
export const col = (t: OutTable, name: string): unknown[] => {
  const i = t.columns.findIndex((c) => c.field.name === name);
  expect(i, `column ${name}`).toBeGreaterThanOrEqual(0);
  return outRows(t).map((r) => r[i]);
};

export const expectClose = (got: unknown[], want: unknown[]): void => {
  expect(got.length).toBe(want.length);
  got.forEach((g, i) => {
    if (want[i] === null) expect(g).toBeNull();
    else expect(Math.abs((g as number) - (want[i] as number))).toBeLessThanOrEqual(1e-9 * Math.max(1, Math.abs(want[i] as number)));
  });
};

/** The error `q` ends with on `e` (the tenant of test/query/fixture.ts). */
export async function failure(e: ProxistQueryEngine, q: unknown): Promise<QueryError> {
  const err = await e.execute(TENANT, q).then(
    () => undefined,
    (x: unknown) => x,
  );
  expect(err).toBeInstanceOf(QueryError);
  return err as QueryError;
}
