// Fan-out of one query over every shard of a table: which buckets this node
// answers itself, which go as parts to their owners, which nobody serves; then
// the union of the loaded series and one note per shard that did not answer
// from a live, caught-up replica (what makes `proxist.complete` false).
import { PartTooLargeError, QueryError } from "../../protocols/errors.js";
import { bucketOf } from "../../protocols/routing.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { allocValueArray } from "../codec/tickbatch.js";
import { loadSeries } from "./load.js";
import type { Loaded } from "./load.js";
import { compareStrings } from "./symorder.js";
import type { LoadRequest } from "./plan.js";
import { addGroupRows, groupPartials } from "./grouping.js";
import type { GroupSpec } from "./grouping.js";
import type { GroupTable } from "./partials.js";
import { loadLastRows, seriesOfRows } from "./lastrows.js";
import type { PartRows } from "./lastrows.js";
import { localStatuses } from "./part.js";
import type { BucketStatus, PartLimit, PartReply, PartRequest } from "./part.js";
import { EMPTY_ROWS, toSeries } from "./series.js";
import type { SymbolSeries } from "./series.js";
import type { ColdSource, HotShard } from "./source.js";

/** Where a bucket is served from now. */
export type BucketPlace = { readonly kind: "local" } | { readonly kind: "remote"; readonly node: string } | { readonly kind: "missing"; readonly why: string };

/** The cluster as the coordinator sees it (wired in src/node/fanout.ts over NATS). */
export interface ClusterParts {
  /** Per bucket (index = bucket) of the table: local, remote owner, or missing with the reason. `fresh`: not from a cache (a part found a shard moved). */
  placement(tenant: string, spec: TableSpec, fresh?: boolean): Promise<readonly BucketPlace[]>;
  /** Runs a part on `node`. Rejects when it does not answer within `req.timeoutMs`; when `signal` aborts it cancels the part there. */
  run(node: string, spec: TableSpec, req: PartRequest, signal: AbortSignal | undefined): Promise<PartReply>;
}

/** One table's shards for one query. */
export interface Coverage {
  readonly spec: TableSpec;
  readonly local: readonly HotShard[];
  /** node -> buckets it owns. */
  readonly remote: ReadonlyMap<string, readonly number[]>;
  readonly missing: readonly { readonly bucket: number; readonly why: string }[];
}

/** True when the whole table is on this node (the engine's local fast paths apply). */
export const allLocal = (c: Coverage): boolean => c.remote.size === 0 && c.missing.length === 0;

/** Coverage from a placement; a bucket placed locally that this node does not host is missing. */
export function coverageOf(spec: TableSpec, places: readonly BucketPlace[] | undefined, hosted: readonly HotShard[]): Coverage {
  if (places === undefined) return { spec, local: hosted, remote: new Map(), missing: [] };
  const byBucket = new Map(hosted.map((h) => [h.bucket, h]));
  const local: HotShard[] = [];
  const remote = new Map<string, number[]>();
  const missing: { bucket: number; why: string }[] = [];
  for (let b = 0; b < spec.shards; b++) {
    const p = places[b] ?? { kind: "missing", why: "unowned (no node is assigned the shard)" };
    if (p.kind === "remote") remote.set(p.node, [...(remote.get(p.node) ?? []), b]);
    else if (p.kind === "missing") missing.push({ bucket: b, why: p.why });
    else {
      const h = byBucket.get(b);
      if (h === undefined) missing.push({ bucket: b, why: "assigned to this node, which does not host it yet (starting)" });
      else local.push(h);
    }
  }
  return { spec, local, remote, missing };
}

/** The note naming a shard that did not answer from a live, caught-up replica. */
export const shardNote = (table: string, s: Pick<BucketStatus, "bucket" | "kind" | "why">): string =>
  `table ${table} shard ${s.bucket}: ${s.kind === "missing" ? "missing" : "lagging"}: ${s.why}`;


export interface FanLoadContext {
  readonly tenant: string;
  readonly parts: ClusterParts | undefined;
  readonly cold: ColdSource | undefined;
  readonly signal: AbortSignal | undefined;
  /** Epoch ms by which every part must have answered. */
  readonly deadlineAt: number;
  readonly minLsn: number | undefined;
  /** Refuse (UNAVAILABLE) instead of answering without a shard. */
  readonly complete: boolean;
  readonly newId: () => string;
  /** Pauses (ms) before each new try of buckets an owner answered "missing" for (a shard moving); [] tries once. */
  readonly partRetriesMs?: readonly number[];
}

/** A moving shard is started on its new owner within a second or so (the leader writes px_assign before the old owner lets go). */
export const PART_RETRIES_MS: readonly number[] = [50, 150, 400, 800];

/**
 * Loads [t0, t1) (+ behind/ahead rows per symbol) over every bucket: locally
 * for local buckets, as parts for remote ones, in parallel; the union is
 * exact because a symbol lives in one bucket. Notes name every shard that is
 * missing or lagging.
 */
export async function fanLoad(ctx: FanLoadContext, cov: Coverage, req: FanRequest, limit?: PartLimit): Promise<Loaded> {
  // Views of hot rows only when nothing is awaited after the local load: remote parts are (the shards apply records meanwhile).
  const r = await fanOut(ctx, cov, req, limit === undefined ? {} : { limit }, (local) => loadSeries({ ...local, views: req.views === true && allLocal(cov) }, ctx.cold, ctx.signal));
  const series: SymbolSeries[] = [...r.local.series];
  for (const p of r.replies) series.push(...p.series);
  return { series: allLocal(cov) ? series : unionSeries(series, cov.spec, req), notes: r.notes, coldRows: r.coldRows };
}

/**
 * lastBy's load (t0 = t1, one row behind) over every bucket as flat rows: this
 * node's buckets read from RAM as copies (held across the wait for the parts),
 * each part's reply as decoded. `rows` is undefined when a bucket needed
 * ClickHouse here or a reply came without flat rows: then `series` holds the
 * union as fanLoad makes it.
 */
export async function fanLast(ctx: FanLoadContext, cov: Coverage, req: FanRequest): Promise<{ rows: PartRows[] | undefined; series: SymbolSeries[]; notes: string[]; coldRows: number }> {
  let flat: PartRows | undefined;
  const r = await fanOut(ctx, cov, req, {}, (local) => {
    flat = loadLastRows(local);
    return flat === undefined ? loadSeries(local, ctx.cold, ctx.signal) : { series: [], notes: [], coldRows: 0 };
  });
  const { notes, coldRows } = r;
  if (flat !== undefined && r.replies.every((p) => p.rows !== undefined)) return { rows: [flat, ...r.replies.map((p) => p.rows!)], series: [], notes, coldRows };
  const series: SymbolSeries[] = flat === undefined ? [...r.local.series] : seriesOfRows(flat, req);
  for (const p of r.replies) series.push(...p.series);
  return { rows: undefined, series: unionSeries(series, cov.spec, req), notes, coldRows };
}

/**
 * Group partials (bars, groupBy) over every bucket into `t`: this node's from
 * its shards, each owner's computed there (pushed down, cold side as SQL where
 * it has ClickHouse) and combined here exactly. Returns the notes.
 */
export async function fanGroup(ctx: FanLoadContext, cov: Coverage, req: FanRequest, g: GroupSpec, t: GroupTable): Promise<{ notes: string[]; coldRows: number }> {
  const extra = { partials: { aggs: g.aggs, bucketMicros: g.bucketMicros, bySymbol: g.bySymbol } };
  const r = await fanOut(ctx, cov, req, extra, (local) => groupPartials(t, local, g, ctx.cold, ctx.signal));
  for (const p of r.replies) if (p.group !== undefined) addGroupRows(t, p.group);
  return { notes: r.notes, coldRows: r.coldRows };
}

type FanRequest = Omit<LoadRequest, "shards" | "tenant" | "spec">;

/**
 * The steps every fan-out shares: parts sent to the remote owners first (with
 * retries where a shard moved), this node's statuses read before its rows (a
 * shard that turns live after its rows were read would be counted live with
 * the rows of its recovery), `readLocal` over this node's buckets, then the
 * notes and cold rows of all (refused under consistency "complete").
 */
async function fanOut<L extends { readonly notes: readonly string[]; readonly coldRows: number }>(
  ctx: FanLoadContext,
  cov: Coverage,
  req: FanRequest,
  extra: PartExtra,
  readLocal: (local: LoadRequest) => L | Promise<L>,
): Promise<{ local: L; replies: PartReply[]; notes: string[]; coldRows: number }> {
  const spec = cov.spec;
  const remote = retryMissing(ctx, spec, sendParts(ctx, cov, req, extra), (node, bs) => sendPart(ctx, spec, node, bs, req, extra));
  // Awaited below, after the local statuses: a cancelled query rejecting it meanwhile must not be an unhandled
  // rejection (Node ends the process on one: a client cancelling a fan-out query killed a node in the fault suite).
  remote.catch(() => {});
  const localReq: LoadRequest = { ...req, tenant: ctx.tenant, spec, shards: cov.local, symbols: allLocal(cov) ? req.symbols : symbolsIn(req.symbols, spec, cov.local.map((h) => h.bucket)), views: false };
  const statuses = await localStatuses(cov.local);
  const [local, replies] = await Promise.all([readLocal(localReq), remote]);
  return { local, replies, ...account(ctx, cov, local, statuses, replies) };
}

const symbolsIn = (symbols: readonly string[] | undefined, spec: TableSpec, buckets: readonly number[]): readonly string[] | undefined => {
  const set = new Set(buckets);
  return symbols?.filter((s) => set.has(bucketOf(s, spec.shards)));
};

/** Notes (missing and lagging shards, the parts' own) and cold rows of one fan-out; refuses under consistency "complete". */
function account(ctx: FanLoadContext, cov: Coverage, local: { notes: readonly string[]; coldRows: number }, statuses: readonly BucketStatus[], replies: readonly PartReply[]): { notes: string[]; coldRows: number } {
  const name = cov.spec.name;
  const notes: string[] = cov.missing.map((m) => shardNote(name, { bucket: m.bucket, kind: "missing", why: m.why }));
  notes.push(...local.notes);
  let coldRows = local.coldRows;
  const all = [...statuses];
  for (const r of replies) {
    all.push(...r.statuses);
    notes.push(...r.notes);
    coldRows += r.coldRows;
  }
  for (const s of all) if (s.kind !== "live") notes.push(shardNote(name, s));
  if (ctx.complete) refuseIncomplete(name, [...cov.missing.map((m) => ({ ...m, kind: "missing" as const })), ...all.filter((s) => s.kind !== "live")]);
  return { notes, coldRows };
}

type PartExtra = Pick<PartRequest, "limit" | "partials">;

/** One part per remote owner; an owner that does not answer yields "missing" statuses for its buckets. */
function sendParts(ctx: FanLoadContext, cov: Coverage, req: FanRequest, extra: PartExtra): Promise<Answered>[] {
  return [...cov.remote].map(([node, bs]) => sendPart(ctx, cov.spec, node, bs, req, extra));
}

/** A part's reply, or "missing" for each of its buckets with `down` set when the owner did not answer at all. */
type Answered = PartReply & { readonly node: string; readonly down?: true };

/** `r` with its node; not a spread, which would read (build) a decoded reply's lazy series. */
function answered(r: PartReply, node: string): Answered {
  return {
    statuses: r.statuses,
    notes: r.notes,
    coldRows: r.coldRows,
    get series() {
      return r.series;
    },
    ...(r.group === undefined ? {} : { group: r.group }),
    ...(r.rows === undefined ? {} : { rows: r.rows }),
    node,
  };
}

function sendPart(ctx: FanLoadContext, spec: TableSpec, node: string, bs: readonly number[], req: FanRequest, extra: PartExtra): Promise<Answered> {
  const columns = spec.columns.filter((_, j) => req.wanted[j]).map((c) => c.name);
  const part: PartRequest = { id: ctx.newId(), tenant: ctx.tenant, table: spec.name, buckets: bs, symbols: symbolsIn(req.symbols, spec, bs), t0: req.t0, t1: req.t1, behind: req.behind, ahead: req.ahead, columns, minLsn: ctx.minLsn, timeoutMs: Math.max(1, ctx.deadlineAt - Date.now()), ...extra };
  return ctx.parts!.run(node, spec, part, ctx.signal).then(
    (r): Answered => answered(r, node),
    (e: unknown): Answered => {
      if (ctx.signal?.aborted === true) throw e;
      // A part no owner could take (too large for one message): the query's own fault, not a missing shard.
      if (e instanceof PartTooLargeError) throw e;
      // The owner did not answer: its buckets are missing, the rest of the answer stands.
      const why = `owner ${node} did not answer (${(e as Error).message})`;
      return { statuses: bs.map((bucket) => ({ bucket, kind: "missing" as const, why })), notes: [], coldRows: 0, series: [], node, down: true };
    },
  );
}

/**
 * The parts' replies, with buckets an owner answered "missing" for asked
 * again where px_assign now places them: a shard that just moved is answered
 * by its new owner, or by the same one once it has started it, instead of
 * leaving the answer short. A node that did not answer is asked again only
 * when the shard has moved off it (a dead node costs one pause and one read
 * of px_assign, not every pause). A missing bucket holds no rows in its
 * reply, so its new part's rows add to the answer without overlap. Bounded
 * by the pauses and the query's deadline; buckets still missing keep their
 * last reason.
 */
async function retryMissing(ctx: FanLoadContext, spec: TableSpec, first: readonly Promise<Answered>[], send: (node: string, buckets: readonly number[]) => Promise<Answered>): Promise<PartReply[]> {
  const replies = await Promise.all(first);
  for (const pause of ctx.partRetriesMs ?? PART_RETRIES_MS) {
    // bucket -> the reply that said it is missing.
    const missing = new Map<number, Answered>();
    for (const r of replies) for (const st of r.statuses) if (st.kind === "missing") missing.set(st.bucket, r);
    if (missing.size === 0 || Date.now() + pause >= ctx.deadlineAt || ctx.signal?.aborted === true) break;
    await new Promise((r) => setTimeout(r, pause));
    const places = await ctx.parts!.placement(ctx.tenant, spec, true).catch(() => undefined);
    if (places === undefined) break;
    const again = new Map<string, number[]>();
    for (const [b, r] of missing) {
      const p = places[b];
      // A bucket now placed on this node or on nobody, or still on a node that did not answer, is left as it was answered.
      if (p?.kind === "remote" && !(r.down === true && p.node === r.node)) again.set(p.node, [...(again.get(p.node) ?? []), b]);
    }
    if (again.size === 0) break;
    const asked = new Set([...again.values()].flat());
    const isAsked = (st: BucketStatus): boolean => st.kind === "missing" && asked.has(st.bucket);
    for (let i = 0; i < replies.length; i++) {
      const r = replies[i]!;
      if (r.statuses.some(isAsked)) replies[i] = { ...r, statuses: r.statuses.filter((st) => !isAsked(st)) };
    }
    replies.push(...(await Promise.all([...again].map(([node, bs]) => send(node, bs)))));
  }
  return replies;
}

/** UNAVAILABLE naming each shard that is not live, when there is one. */
export function refuseIncomplete(table: string, bad: readonly Pick<BucketStatus, "bucket" | "kind" | "why">[]): void {
  if (bad.length === 0) return;
  throw new QueryError(
    "UNAVAILABLE",
    `consistency "complete": ${bad.map((s) => shardNote(table, s)).join("; ")}; retry once the shards are live, or query without "consistency":"complete" for a partial answer with notes`,
  );
}

/** The series of every answer, sorted by symbol, with an empty series for a requested symbol nobody had (as one node answers). */
export function unionSeries(series: readonly SymbolSeries[], spec: TableSpec, req: Pick<LoadRequest, "symbols" | "wanted" | "t0" | "t1">): SymbolSeries[] {
  const by = new Map<string, SymbolSeries>();
  for (const s of series) if (s.n > 0 || !by.has(s.symbol)) by.set(s.symbol, s);
  const empty = { ...EMPTY_ROWS(req.wanted.length), values: spec.columns.map((c, j) => (req.wanted[j] ? allocValueArray(c.type, 0) : undefined)) };
  if (req.symbols !== undefined) for (const sym of req.symbols) if (!by.has(sym)) by.set(sym, toSeries(sym, empty, req.t0, req.t1, 0, 0));
  return [...by.values()].sort((x, y) => compareStrings(x.symbol, y.symbol));
}
