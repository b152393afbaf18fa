// A feed running: its operator folded over the feed's WAL records in LSN
// order, and the offset its output has reached. Started from an offset, it
// folds every record (the state needs them) but sends only what the offset
// does not cover, so a resumed feed continues exactly where the old one stopped.
import { asofOperator } from "./asof.js";
import { barsOperator } from "./bars.js";
import { lastByOperator } from "./lastby.js";
import type { FeedPlan } from "./model.js";
import { feedTables } from "./model.js";
import { covers, shardKey, uniformOffset } from "./offset.js";
import type { FeedOffset } from "./offset.js";
import type { FeedOperator, FeedRecord } from "./operator.js";
import { rawOperator } from "./raw.js";
import { rollingOperator } from "./rolling.js";
import { sliceTable } from "../query/index.js";
import type { OutTable } from "../query/index.js";

export interface FeedBatch {
  /** "snapshot": the whole state when a subscription starts from "snapshot"; "update": what one record changed. */
  readonly kind: "snapshot" | "update";
  readonly table: OutTable;
  /** What this batch covers: resume after it with this offset. */
  readonly offset: FeedOffset;
  /** An update: the offset before its record (a part of the record's output resumes from there, ./parts.ts). */
  readonly prior?: FeedOffset;
  /** How many rows of its record's output (or of its snapshot) came before its rows: a part's, or resumed from a part. */
  readonly firstRow?: number;
  /** Set on the parts of a cut record or snapshot: the rows of the whole. */
  readonly totalRows?: number;
}

/** A runner's state as plain data. */
export interface SavedRunner {
  readonly lsn: Readonly<Record<string, number>>;
  readonly tooLate: number;
  readonly state: unknown;
}

export function feedOperator(plan: FeedPlan): FeedOperator {
  const q = plan.query;
  switch (q.op) {
    case "range":
      return rawOperator(q, plan.left, plan.fields);
    case "lastBy":
    case "firstBy":
      return lastByOperator(q, plan.left, plan.fields);
    case "rolling":
      return rollingOperator(q, plan.left, plan.fields, plan.latenessMicros);
    case "bars":
      return barsOperator(q, plan.left, plan.fields, plan.latenessMicros);
    case "asof":
      return asofOperator(q, plan.left, plan.right!, plan.fields, plan.latenessMicros);
  }
}

export class FeedRunner {
  readonly operator: FeedOperator;
  private lsn: Record<string, number>;

  /** `sendAfter`: output covered by this offset is folded but not sent (resume). */
  constructor(
    readonly plan: FeedPlan,
    private readonly sendAfter?: FeedOffset,
  ) {
    this.operator = feedOperator(plan);
    this.lsn = { ...uniformOffset(plan.fingerprint, feedTables(plan), 0).lsn };
  }

  /** The offset reached: every record folded so far is covered. */
  offset(): FeedOffset {
    return { feed: this.plan.fingerprint, lsn: { ...this.lsn } };
  }

  /** True while the output is still inside the resume offset (nothing is sent yet). */
  get resuming(): boolean {
    if (this.sendAfter === undefined) return false;
    return Object.entries(this.sendAfter.lsn).some(([k, v]) => (this.lsn[k] ?? 0) < v);
  }

  /** Folds one record; returns what to send (undefined: nothing changed, or the resume offset covers it). */
  push(rec: FeedRecord): FeedBatch | undefined {
    // A redelivered record (the reader retried): already folded.
    if ((this.lsn[shardKey(rec.table, rec.bucket)] ?? 0) >= rec.lsn) return undefined;
    const out = this.operator.apply(rec);
    if (out === undefined || (this.sendAfter !== undefined && covers(this.sendAfter, rec.table, rec.bucket, rec.lsn))) {
      this.advanceTo(rec.lsn);
      return undefined;
    }
    // The position just before the record, the same however the runner got here (records fold in LSN order).
    const prior: FeedOffset = { feed: this.plan.fingerprint, lsn: Object.fromEntries(Object.entries(this.lsn).map(([k, v]) => [k, Math.max(v, rec.lsn - 1)])) };
    this.advanceTo(rec.lsn);
    // Resumed from a part of this record's output: the rows it did not send yet.
    const part = this.sendAfter?.part;
    const sent = part !== undefined && part.snapshot !== true && part.lsn === rec.lsn ? part.rows : 0;
    if (sent === 0) return { kind: "update", table: out, offset: this.offset(), prior };
    if (sent >= out.rows) return undefined;
    return { kind: "update", table: sliceTable(out, sent, out.rows), offset: this.offset(), prior, firstRow: sent };
  }

  /** A stateless feed (raw) starting at `o`: nothing before it is read, so the position starts there. */
  skipTo(o: FeedOffset): void {
    for (const k of Object.keys(this.lsn)) this.lsn[k] = Math.max(this.lsn[k]!, o.lsn[k] ?? 0);
  }

  /**
   * The reader passed LSN `lsn` of the tenant's WAL (in LSN order, across
   * the feed's shards): every shard is covered up to it, records or not.
   */
  advanceTo(lsn: number): void {
    for (const k of Object.keys(this.lsn)) if (this.lsn[k]! < lsn) this.lsn[k] = lsn;
  }

  /** What a checkpoint keeps (./checkpoint.ts): the offset reached, the late-tick count and the operator's state. */
  save(): SavedRunner {
    return { lsn: { ...this.lsn }, tooLate: this.operator.tooLate, state: this.operator.save() };
  }

  /** Puts a saved runner's state into this one (fresh, of the same plan): it folds on from the saved offset. */
  load(s: SavedRunner): void {
    const want = Object.keys(this.lsn).sort().join(",");
    const got = Object.keys(s.lsn).sort().join(",");
    if (want !== got) throw new Error(`the saved offset covers shards ${got}, the feed reads ${want}`);
    this.operator.load(s.state);
    this.operator.tooLate = s.tooLate;
    this.lsn = { ...s.lsn };
  }

  /** The state now as one batch (last-by, bars), or undefined for per-tick kinds or an empty state. */
  snapshot(): FeedBatch | undefined {
    const t = this.operator.snapshot();
    return t === undefined ? undefined : { kind: "snapshot", table: t, offset: this.offset() };
  }
}
