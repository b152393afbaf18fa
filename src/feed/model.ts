// The feed model: a feed is a standing query over one table (two for as-of),
// written as the query JSON of the operator it runs incrementally. Parsing
// reuses the query engine's validation, so a feed and a batch query refuse the
// same bad input with the same words; this adds the rules only feeds have.
import { createHash } from "node:crypto";
import { QueryError } from "../../protocols/errors.js";
import { MICROS_PER_DAY, parseDuration, usesUdf } from "../../protocols/query.js";
import type { AsofQuery, BarsQuery, ByQuery, Query, RangeQuery, RollingQuery } from "../../protocols/query.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { fieldsOf, parseTenantQuery } from "../query/index.js";
import type { OutField } from "../query/index.js";

/** raw ticks (op range), live last-by, OHLCV bars, rolling aggregates per tick, as-of enriched ticks. */
export type FeedKind = "raw" | "lastBy" | "bars" | "rolling" | "asof";

export type FeedQuery = RangeQuery | ByQuery | BarsQuery | RollingQuery | AsofQuery;

export interface FeedPlan {
  readonly tenant: string;
  readonly kind: FeedKind;
  readonly query: FeedQuery;
  readonly left: TableSpec;
  readonly right: TableSpec | undefined;
  /** How late (behind the symbol's newest tick) a tick may arrive and still get exactly the batch query's values. */
  readonly latenessMicros: number;
  /** Identifies the feed's definition: an offset carries it, so an offset of another feed is refused. */
  readonly fingerprint: string;
  /** Output fields: the batch query's, then the feed's own (`_lsn`, `_row`, `closed`). */
  readonly fields: readonly OutField[];
}

export const DEFAULT_LATENESS_MICROS = 60_000_000;

const KINDS: Partial<Record<Query["op"], FeedKind>> = { range: "raw", lastBy: "lastBy", bars: "bars", rolling: "rolling", asof: "asof" };

/** Query fields that bound a batch query in time or size: a standing feed has neither (its start is the subscription's `from`). */
const BATCH_ONLY = ["t0", "t1", "at", "limit", "order", "minLsn", "consistency", "sort"] as const;

const invalid = (m: string): QueryError => new QueryError("INVALID_ARGUMENT", m);

export interface FeedPlanInput {
  /** The feed's standing query, as query JSON: {"op":"rolling","table":"trades","window":"5m",...}. */
  readonly query: unknown;
  /** Duration string or µs (default 60 s). */
  readonly lateness?: string | number;
}

/** Validates a feed definition for `tenant` against its tables; throws QueryError naming the field, the rule and the fix. */
export function planFeed(tenant: string, input: FeedPlanInput, specOf: (table: string) => TableSpec | undefined, tablesOf: () => readonly string[]): FeedPlan {
  const json = input.query;
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw invalid(`feed query must be a JSON object, e.g. {"op":"range","table":"trades"}`);
  for (const k of BATCH_ONLY) {
    if (k in json) throw invalid(`feed query field ${k}: a feed is a standing query with no time range, limit or order; remove "${k}" (choose where it starts with the subscription's "from")`);
  }
  const q = parseTenantQuery(tenant, json);
  const kind = KINDS[q.op];
  if (kind === undefined) throw invalid(`feed query op ${q.op}: not a feed operator; a feed runs op range (raw ticks), lastBy, bars, rolling or asof`);
  const spec = (table: string): TableSpec => {
    const s = specOf(table);
    if (s === undefined) throw new QueryError("NOT_FOUND", `tenant ${tenant} has no table ${table} (its tables: ${[...tablesOf()].sort().join(", ") || "none"})`);
    return s;
  };
  const left = spec(q.table);
  const right = q.op === "asof" ? spec(q.right.table) : undefined;
  if (q.op === "asof") {
    if (q.direction !== "backward") throw invalid(`feed query field direction: "${q.direction}" would wait for right rows that have not arrived yet; a feed joins the prevailing right row, direction "backward"`);
    if (q.right.table === q.table) throw invalid(`feed query field right.table: an as-of feed joins two different tables; ${q.table} is on both sides`);
  }
  if (usesUdf(q)) throw invalid(`feed query: user-defined functions do not run in feeds yet (issue 17); compute the function in a query over the feed's table instead, or remove the "udf" aggregate/derived column`);
  if (q.op === "bars" && q.fill !== "none") throw invalid(`feed query field fill: a bar feed sends each bar when it changes, it has no empty buckets to fill; remove "fill"`);
  const latenessMicros = input.lateness === undefined ? DEFAULT_LATENESS_MICROS : parseDuration("lateness", input.lateness, 0, MICROS_PER_DAY);
  const fq = q as FeedQuery;
  const base = fieldsOf(fq, left, right);
  const extra: OutField[] = kind === "bars" ? [{ name: "closed", kind: "bool", nullable: false }] : kind === "lastBy" ? [{ name: "_lsn", kind: "i64", nullable: false }] : [{ name: "_lsn", kind: "i64", nullable: false }, { name: "_row", kind: "int32", nullable: false }];
  const fingerprint = createHash("sha256")
    .update(JSON.stringify({ tenant, q: { ...fq, t0: 0, t1: 0 }, latenessMicros }))
    .digest("hex")
    .slice(0, 16);
  return { tenant, kind, query: fq, left, right, latenessMicros, fingerprint, fields: [...base, ...extra] };
}

/** The tables whose WAL records a feed reads. */
export const feedTables = (p: FeedPlan): readonly TableSpec[] => (p.right === undefined ? [p.left] : [p.left, p.right]);
