// Reading node-sql-parser's AST (PostgreSQL grammar). Its typings do not
// describe that dialect's shapes (column names wrapped in {expr:{value}},
// function names as name lists), so nodes are read loosely here, in one place,
// and everything else works on the small shapes these helpers return.
/* eslint-disable @typescript-eslint/no-explicit-any -- see above: every field read is checked */
import pkg from "node-sql-parser";
import { malformed, refuse } from "./refuse.js";

export type Node = any;

const parser = new pkg.Parser();

/** Parses one statement; a syntax error names where the parser stopped. */
export function parseStatement(sql: string): Node {
  let ast: Node;
  try {
    ast = parser.astify(sql, { database: "PostgresQL" });
  } catch (e) {
    const msg = (e as Error).message;
    const where = /line (\d+).*column (\d+)/.exec(msg);
    const found = /but "(.*?)" found/.exec(msg)?.[1] ?? /but (end of input) found/.exec(msg)?.[1];
    throw malformed(`the statement does not parse${found ? ` at "${found}"` : ""}${where ? ` (column ${where[2]} of the rewritten text)` : ""}`, "write SELECT ... FROM <table> [WHERE sym IN (...) AND ts >= ... AND ts < ...] [ORDER BY ts] [LIMIT n]; see the SQL docs for the time-series clauses");
  }
  if (Array.isArray(ast)) {
    if (ast.length !== 1) throw refuse("several statements in one request", "send one statement per request");
    ast = ast[0];
  }
  return ast;
}

const nameText = (v: Node): string | undefined => (typeof v === "string" ? v : typeof v?.value === "string" ? v.value : undefined);

export interface ColRef {
  readonly qual: string | undefined;
  /** "*" for a star. */
  readonly name: string;
}

export function colRef(n: Node): ColRef | undefined {
  if (n?.type !== "column_ref") return undefined;
  const qual = n.table === null || n.table === undefined ? undefined : nameText(n.table);
  const c = n.column;
  const name = c === "*" ? "*" : typeof c === "string" ? c : nameText(c?.expr);
  return name === undefined ? undefined : { qual, name };
}

/** Function name (lower case) and argument nodes of a call (aggr_func or function), else undefined. */
export function callOf(n: Node): { name: string; args: Node[]; distinct: boolean } | undefined {
  if (n?.type === "aggr_func") {
    const expr = n.args?.expr;
    return { name: String(n.name).toLowerCase(), args: expr === undefined || expr === null ? [] : [expr], distinct: n.args?.distinct === "DISTINCT" };
  }
  if (n?.type === "function") {
    const parts: Node[] = n.name?.name ?? [];
    const name = parts.map(nameText).join(".").toLowerCase();
    const args: Node[] = n.args?.value ?? (n.args === null || n.args === undefined ? [] : [n.args]);
    return { name, args, distinct: false };
  }
  return undefined;
}

/** A literal's value: string or number; undefined when the node is not a literal. */
export function literal(n: Node): string | number | undefined {
  switch (n?.type) {
    case "number":
    case "bigint":
      return typeof n.value === "number" ? n.value : Number(n.value);
    case "single_quote_string":
    case "string":
    case "timestamp":
    case "date":
    case "datetime":
      return String(n.value);
    default:
      return undefined;
  }
}

/** A short rendering of a node for messages. */
export function show(n: Node): string {
  const c = colRef(n);
  if (c) return c.qual ? `${c.qual}.${c.name}` : c.name;
  const call = callOf(n);
  if (call) return `${call.name}(${call.args.map(show).join(", ")})`;
  const l = literal(n);
  if (l !== undefined) return typeof l === "string" ? `'${l}'` : String(l);
  if (n?.type === "binary_expr") return `${show(n.left)} ${n.operator} ${show(n.right)}`;
  if (n?.type === "expr_list") return `(${(n.value ?? []).map(show).join(", ")})`;
  if (n?.type === "star") return "*";
  return String(n?.type ?? "expression");
}
