// WHERE becomes the query model's filters: a symbol list (sym IN (...),
// sym = '...') and a time range [t0, t1) (ts >=, >, <, <=, =, BETWEEN), joined
// by AND. Anything else is refused: the engine filters on symbol and time only.
import type { Node } from "./ast.js";
import { callOf, colRef, literal, show } from "./ast.js";
import { refuse } from "./refuse.js";
import { durationMicros, durationOf, timestampOf } from "./time.js";

export interface Filters {
  symbols: string[] | undefined;
  t0: number | undefined;
  t1: number | undefined;
}

/** Which column a reference names: the left table's symbol or time column, or something else. */
export type Classify = (n: Node) => "sym" | "ts" | "other";

const FLIP: Record<string, string> = { "<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=" };
const WHERE_FIX = "filter with sym IN ('A', 'B'), sym = 'A', ts >= '2024-01-02T14:30:00Z', ts < ..., ts BETWEEN ... AND ..., joined by AND; filter other columns in the client";

function conjuncts(n: Node, out: Node[]): Node[] {
  if (n?.type === "binary_expr" && n.operator === "AND") {
    conjuncts(n.left, out);
    conjuncts(n.right, out);
  } else out.push(n);
  return out;
}

function symbolValue(n: Node, where: string): string {
  const v = literal(n);
  if (typeof v !== "string") throw refuse(`${where}: ${show(n)} as a symbol`, "write symbols as string literals: sym IN ('AAPL', 'MSFT')");
  return v;
}

const NOW = new Set(["now", "current_timestamp", "systimestamp", "localtimestamp"]);
const TS_FIX = "write a literal ('2024-01-02T14:30:00Z', integer microseconds) or now() - INTERVAL '5m'";

/** A duration operand: INTERVAL '5 minutes', '5m' or integer microseconds. */
function durationValue(n: Node, where: string): number {
  if (n?.type === "interval") {
    const v = literal(n.expr);
    if (v === undefined) throw refuse(`${where}: the interval ${show(n.expr)}`, "write INTERVAL '5 minutes'");
    return durationMicros(durationOf(`${v}${n.unit ? ` ${String(n.unit).toLowerCase()}` : ""}`, where), where);
  }
  const v = literal(n);
  if (v === undefined) throw refuse(`${where}: ${show(n)} as a duration`, TS_FIX);
  return durationMicros(durationOf(String(v), where), where);
}

/** A timestamp: a literal, now(), or one of them plus or minus a duration. */
function tsValue(n: Node, where: string, now: number): number {
  if (n?.type === "function" && NOW.has(callOf(n)?.name ?? "")) return now;
  if (n?.type === "binary_expr" && (n.operator === "-" || n.operator === "+")) {
    const t = tsValue(n.left, where, now) + (n.operator === "-" ? -1 : 1) * durationValue(n.right, where);
    return timestampOf(t, where);
  }
  const v = literal(n);
  if (v === undefined) throw refuse(`${where}: the expression ${show(n)} as a timestamp`, TS_FIX);
  return timestampOf(v, where);
}

export function filtersOf(where: Node, classify: Classify, nowMicros: number): Filters {
  const f: Filters = { symbols: undefined, t0: undefined, t1: undefined };
  if (where === null || where === undefined) return f;
  const lower = (t: number): void => void (f.t0 = f.t0 === undefined ? t : Math.max(f.t0, t));
  const upper = (t: number): void => void (f.t1 = f.t1 === undefined ? t : Math.min(f.t1, t));
  const symbols = (list: string[]): void => void (f.symbols = f.symbols === undefined ? [...new Set(list)] : f.symbols.filter((s) => list.includes(s)));
  for (const c of conjuncts(where, [])) {
    if (c?.type === "binary_expr" && c.operator === "OR") throw refuse(`OR in WHERE (${show(c)})`, `${WHERE_FIX}; for several symbols use sym IN (...)`);
    if (c?.type === "unary_expr" || (c?.type === "binary_expr" && /^NOT /.test(String(c.operator)))) throw refuse(`NOT in WHERE (${show(c)})`, WHERE_FIX);
    if (c?.type !== "binary_expr") throw refuse(`the condition ${show(c)}`, WHERE_FIX);
    let { left, right } = c as { left: Node; right: Node };
    let op = String(c.operator);
    if (colRef(left) === undefined && colRef(right) !== undefined && FLIP[op] !== undefined) {
      [left, right] = [right, left];
      op = FLIP[op]!;
    }
    const kind = colRef(left) === undefined ? "other" : classify(left);
    const where = `WHERE ${show(c)}`;
    if (kind === "other") throw refuse(`filtering on ${show(left)}`, WHERE_FIX);
    if (kind === "sym") {
      if (op === "IN" && right?.type === "expr_list") symbols((right.value as Node[]).map((v) => symbolValue(v, where)));
      else if (op === "=") symbols([symbolValue(right, where)]);
      else throw refuse(`${where}`, "filter symbols with sym IN ('A', 'B') or sym = 'A'");
      continue;
    }
    switch (op) {
      case ">=":
        lower(tsValue(right, where, nowMicros));
        break;
      case ">":
        lower(tsValue(right, where, nowMicros) + 1);
        break;
      case "<":
        upper(tsValue(right, where, nowMicros));
        break;
      case "<=":
        upper(tsValue(right, where, nowMicros) + 1);
        break;
      case "=": {
        const t = tsValue(right, where, nowMicros);
        lower(t);
        upper(t + 1);
        break;
      }
      case "BETWEEN": {
        const [a, b] = (right?.value ?? []) as Node[];
        lower(tsValue(a, where, nowMicros));
        upper(tsValue(b, where, nowMicros) + 1);
        break;
      }
      default:
        throw refuse(`${where}`, "filter time with ts >=, >, <, <=, = or BETWEEN");
    }
  }
  if (f.t0 !== undefined && f.t1 !== undefined && f.t1 < f.t0) f.t1 = f.t0;
  return f;
}
