// The independent oracle: DuckDB over every tick of a workload, with one SQL
// formulation per operator (correlated aggregates, self joins, window
// functions), plus helpers to compare engine results with its rows.
import { DuckDBInstance } from "@duckdb/node-api";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { OutTable } from "../../src/query/index.js";
import type { Tick } from "./fixture.js";

export interface Oracle {
  readonly conn: DuckDBConnection;
  rows(sql: string): Promise<unknown[][]>;
  close(): void;
}

const num = (v: unknown): unknown => (typeof v === "bigint" ? Number(v) : v === undefined ? null : v);

export async function oracleOf(ticks: readonly Tick[]): Promise<Oracle> {
  const db = await DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  await conn.run(`CREATE TABLE ticks (tbl VARCHAR, sym VARCHAR, ts BIGINT, lsn BIGINT, "row" BIGINT, v0 DOUBLE, v1 DOUBLE)`);
  for (let i = 0; i < ticks.length; i += 2000) {
    const values = ticks
      .slice(i, i + 2000)
      .map((t) => `('${t.table}', '${t.sym}', ${t.ts}, ${t.lsn}, ${t.row}, ${t.values[0]}, ${t.values[1]})`)
      .join(", ");
    await conn.run(`INSERT INTO ticks VALUES ${values}`);
  }
  await conn.run(`CREATE VIEW trades AS SELECT sym, ts, lsn, "row", v0 AS price, CAST(v1 AS BIGINT) AS size FROM ticks WHERE tbl = 'trades'`);
  await conn.run(`CREATE VIEW quotes AS SELECT sym, ts, lsn, "row", v0 AS bid, v1 AS ask FROM ticks WHERE tbl = 'quotes'`);
  return {
    conn,
    async rows(sql: string): Promise<unknown[][]> {
      const r = await conn.runAndReadAll(sql);
      return r.getRowsJS().map((row) => row.map(num));
    },
    close() {
      conn.closeSync();
    },
  };
}

/** Engine result as plain rows: symbols as strings, nulls as null. */
export function outRows(t: OutTable): unknown[][] {
  const rows: unknown[][] = [];
  for (let k = 0; k < t.rows; k++) {
    rows.push(
      t.columns.map((c) => {
        if (c.valid !== undefined && c.valid[k] === 0) return null;
        return c.field.kind === "sym" ? t.symbols[c.data[k]!] : c.data[k];
      }),
    );
  }
  return rows;
}

const close = (a: unknown, b: unknown): boolean => {
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "number") return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  return false;
};

/** First difference between two row lists, or undefined when they agree (numbers to 1e-9 relative). */
export function diffRows(got: readonly unknown[][], want: readonly unknown[][]): string | undefined {
  if (got.length !== want.length) {
    return `${got.length} rows, oracle ${want.length}; first got ${JSON.stringify(got.slice(0, 3))}, want ${JSON.stringify(want.slice(0, 3))}`;
  }
  for (let i = 0; i < got.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (g.length !== w.length || g.some((v, j) => !close(v, w[j]))) return `row ${i}: got ${JSON.stringify(g)}, oracle ${JSON.stringify(w)}`;
  }
  return undefined;
}

export const symFilter = (symbols: readonly string[] | undefined, col = "sym"): string => (symbols === undefined ? "" : ` AND ${col} IN (${symbols.length === 0 ? "NULL" : symbols.map((s) => `'${s}'`).join(", ")})`);
