// One subscription of a feed, without IO: where its WAL reading starts, the
// runner, the start-time gate (from a time: nothing is sent before the first
// record holding a tick at or after it), the durable gate (a batch waits until its record's shard persisted
// it) and the bounded queue towards the consumer. The transport (gRPC) feeds
// it records and watermarks and drains it; on overflow the session stops
// (exact kinds) or conflates the backlog into one snapshot (last-by, bars).
import { isStartTime, reaches } from "./from.js";
import type { FeedFrom } from "./from.js";
import type { FeedPlan } from "./model.js";
import { feedTables } from "./model.js";
import { resumeSeq, shardKey, uniformOffset } from "./offset.js";
import type { FeedOffset } from "./offset.js";
import type { FeedRecord } from "./operator.js";
import type { ParkedState } from "./parked.js";
import { FeedRunner } from "./runner.js";
import type { FeedBatch } from "./runner.js";
import { sliceTable } from "../query/index.js";

export interface FeedSessionOptions {
  readonly from: FeedFrom;
  /** The newest LSN on the feed's WAL subjects when the subscription starts (0: none). */
  readonly lastLsn: number;
  /** Only batches of records with LSN <= P of their shard. */
  readonly durable: boolean;
  /** Batches waiting for the consumer at most. */
  readonly maxBuffer: number;
  /** Last-by and bars: on overflow replace the backlog with one snapshot instead of stopping. */
  readonly conflate: boolean;
}

/** A sent batch with the record it came from (the durable gate needs it). */
interface Pending {
  readonly batch: FeedBatch;
  readonly key: string;
  readonly lsn: number;
}

export class FeedSession {
  readonly runner: FeedRunner;
  /** The first WAL sequence to read. */
  readonly readFrom: number;
  /** The offset the subscription starts at (sent first: resuming there loses nothing). */
  readonly startOffset: FeedOffset;
  /** Set once the consumer fell behind the buffer on an exact feed: the call ends (resumable from the last batch sent). */
  overflowed = false;
  /** Why: the consumer read too slowly, or (durable) P did not advance so batches waited for it. */
  overflowReason: "consumer" | "durable" | undefined;
  /** Persisted LSN (P) per shard as last seen. */
  readonly persisted = new Map<string, number>();
  /** The last WAL sequence folded (0: none yet). */
  folded = 0;
  private readonly queue: FeedBatch[] = [];
  /** Batches of a parked state waiting at the start: the buffer's bound counts only what comes after them. */
  private backlog = 0;
  private readonly held: Pending[] = [];
  private snapshotDue: boolean;
  /** From a time: set until the first record holding a tick at or after it (output before that is folded, not sent). */
  private startTime: number | undefined;
  /** From a part of a snapshot: the rest of that snapshot is sent once its record is folded again. */
  private snapshotRest: { readonly lsn: number; readonly rows: number } | undefined;

  constructor(
    readonly plan: FeedPlan,
    private readonly o: FeedSessionOptions,
    parked?: ParkedState,
  ) {
    const tables = feedTables(plan);
    if (parked !== undefined) {
      // A parked state (./parked.ts): its runner goes on after the last record it folded; what it made and did not send goes first.
      this.runner = parked.runner;
      this.startOffset = parked.at;
      this.readFrom = parked.folded + 1;
      this.folded = parked.folded;
      this.queue.push(...parked.pending);
      this.backlog = parked.pending.length;
      this.snapshotDue = false;
      return;
    }
    const stateless = plan.kind === "raw";
    const now = uniformOffset(plan.fingerprint, tables, o.lastLsn);
    if (o.from === "now") {
      this.runner = new FeedRunner(plan, now);
      this.startOffset = now;
    } else if (o.from === "snapshot") {
      // Stateful kinds show the state once caught up; per-tick kinds send every tick the WAL holds.
      this.runner = new FeedRunner(plan, plan.kind === "lastBy" || plan.kind === "bars" ? now : undefined);
      this.startOffset = uniformOffset(plan.fingerprint, tables, 0);
    } else if (isStartTime(o.from)) {
      // Where the time starts is known only once a record reaches it: resuming before then needs the time again, or LSN 0.
      this.runner = new FeedRunner(plan);
      this.startOffset = uniformOffset(plan.fingerprint, tables, 0);
      this.startTime = o.from.timeMicros;
    } else if (o.from.part?.snapshot === true) {
      // Inside a snapshot: the state at its record is the same when folded again, so its rows after the part follow.
      this.runner = new FeedRunner(plan, { feed: o.from.feed, lsn: o.from.lsn });
      this.startOffset = o.from;
      this.snapshotRest = { lsn: o.from.part.lsn, rows: o.from.part.rows };
    } else {
      this.runner = new FeedRunner(plan, o.from);
      this.startOffset = o.from;
    }
    // A raw feed has no state: it reads from where it sends. Every other kind folds the WAL from its start, and so does a start time (it is found by reading).
    this.readFrom = !stateless || o.from === "snapshot" || isStartTime(o.from) ? 1 : o.from === "now" ? o.lastLsn + 1 : resumeSeq(o.from);
    if (stateless && o.from !== "snapshot" && !isStartTime(o.from)) this.runner.skipTo(o.from === "now" ? now : o.from);
    this.snapshotDue = o.from === "snapshot" && (plan.kind === "lastBy" || plan.kind === "bars");
    if (this.snapshotDue && o.lastLsn === 0) this.snapshotDue = false;
  }

  /** Folds a record read from the WAL. */
  push(rec: FeedRecord): void {
    // Past an overflow the call ends: folding on would take the runner past the batches kept for a parked state.
    if (this.overflowed) return;
    this.folded = rec.lsn;
    if (this.startTime !== undefined && reaches(rec.batch.ts, rec.batch.rows, this.startTime)) this.startTime = undefined;
    const b = this.runner.push(rec);
    if (b !== undefined && this.startTime === undefined) this.offer({ batch: b, key: shardKey(rec.table, rec.bucket), lsn: rec.lsn });
    if (this.snapshotRest !== undefined && rec.lsn >= this.snapshotRest.lsn) {
      const s = this.runner.snapshot();
      const skip = this.snapshotRest.rows;
      this.snapshotRest = undefined;
      if (s !== undefined && s.table.rows > skip) this.offer({ batch: { ...s, table: sliceTable(s.table, skip, s.table.rows), firstRow: skip }, key: shardKey(rec.table, rec.bucket), lsn: rec.lsn });
    }
    if (this.snapshotDue && rec.lsn >= this.o.lastLsn) {
      this.snapshotDue = false;
      const s = this.runner.snapshot();
      if (s !== undefined) this.offer({ batch: s, key: shardKey(rec.table, rec.bucket), lsn: rec.lsn });
    }
  }

  /** The shard's persisted watermark moved: releases durable batches it now covers. */
  setPersisted(table: string, bucket: number, lsn: number): void {
    const k = shardKey(table, bucket);
    if ((this.persisted.get(k) ?? 0) >= lsn) return;
    this.persisted.set(k, lsn);
    this.release();
  }

  /** The batches ready for the consumer (taken: the transport sends them). */
  drain(): FeedBatch[] {
    this.backlog = 0;
    return this.queue.splice(0);
  }

  /**
   * What a resume from the last message sent needs to go on (./parked.ts): the
   * runner, and the batches not sent (`unsent`, taken from the queue but not
   * written, then what the queue holds). After an overflow the queue keeps the
   * batches of the record that overflowed it, so they match the runner's state.
   */
  parkable(unsent: readonly FeedBatch[]): { runner: FeedRunner; pending: FeedBatch[]; folded: number } | undefined {
    // A start time not reached yet, or a snapshot still to send, is more than the runner and the batches.
    if (this.startTime !== undefined || this.snapshotRest !== undefined || this.snapshotDue || this.held.length > 0) return undefined;
    return { runner: this.runner, pending: [...unsent, ...this.queue.splice(0)], folded: this.folded };
  }

  /** Batches waiting for the consumer. */
  get buffered(): number {
    return this.queue.length;
  }

  private offer(p: Pending): void {
    if (this.o.durable) {
      // P stalled (ClickHouse down): the held batches are bounded like the queue; the consumer resumes later from its offset.
      if (this.held.length >= this.o.maxBuffer) {
        this.overflowed = true;
        this.overflowReason ??= "durable";
        return;
      }
      this.held.push(p);
      this.release();
    } else this.enqueue(p.batch);
  }

  /** Durable: batches in record order, each once its shard's P covers its record (order kept: one waiting batch holds the rest). */
  private release(): void {
    while (this.held.length > 0 && this.held[0]!.lsn <= (this.persisted.get(this.held[0]!.key) ?? 0)) this.enqueue(this.held.shift()!.batch);
  }

  private enqueue(b: FeedBatch): void {
    // Past an overflow nothing is sent, but the batches stay: with the runner they are a parked state (parkable()).
    if (this.overflowed) {
      if (this.overflowReason === "consumer") this.queue.push(b);
      return;
    }
    if (this.queue.length >= this.o.maxBuffer + this.backlog) {
      const canConflate = this.o.conflate && (this.plan.kind === "lastBy" || this.plan.kind === "bars") && !this.o.durable;
      const snap = canConflate ? this.runner.snapshot() : undefined;
      if (snap === undefined) {
        this.overflowed = true;
        this.overflowReason ??= "consumer";
        if (this.overflowReason === "consumer") this.queue.push(b);
        return;
      }
      // The consumer replaces its state with the snapshot: the updates it replaces are no longer needed.
      this.queue.splice(0, this.queue.length, snap);
      return;
    }
    this.queue.push(b);
  }
}
