// The sink's permission to write: a SinkLease holds the owner's lease
// revision, a hard deadline (renewed while the node's agent still confirms the
// assignment; it lapses on its own when the node is cut off or paused) and a
// revoked flag set by the agent's watch of px_assign. `permit()` is asked
// before every ClickHouse INSERT, every watermark and every change of the
// durable consumer: a stale owner stops at the next check. Pure: the clock is
// passed in. Also the readers' side: a watermark of an older revision than the
// highest seen is refused.
import { TaggedError } from "../../protocols/tagged.js";

/** The sink's lease is gone (revoked, expired): it must not write. */
export class SinkFencedError extends TaggedError("SinkFencedError") {}

/** True when `e` (or an error it wraps) is SinkFencedError: retrying will not help, the sink stops. */
export function isFenced(e: unknown): boolean {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 8; c = (c as { cause?: unknown }).cause, i++) {
    if (c instanceof SinkFencedError) return true;
  }
  return false;
}

export type PermitVerdict = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export class SinkLease {
  private deadline: number;
  private revokedBy: string | undefined;

  /**
   * `ttlMs`: how long a permit holds without renewal; shorter than the time
   * after which the control plane moves a silent node's shards.
   */
  constructor(
    readonly revision: number,
    private readonly ttlMs: number,
    nowMs: number,
    /** TESTS ONLY (negative control): every permit is granted. */
    private readonly disabled = false,
  ) {
    this.deadline = nowMs + ttlMs;
  }

  /** The agent still holds the assignment at `nowMs`: extend the deadline. */
  renew(nowMs: number): void {
    if (this.revokedBy === undefined) this.deadline = Math.max(this.deadline, nowMs + this.ttlMs);
  }

  /** The assignment moved (or the shard is stopping): no write from now on. Idempotent. */
  revoke(why: string): void {
    this.revokedBy ??= why;
  }

  get revoked(): boolean {
    return this.revokedBy !== undefined;
  }

  get deadlineMs(): number {
    return this.deadline;
  }

  verdict(nowMs: number): PermitVerdict {
    if (this.disabled) return { ok: true };
    if (this.revokedBy !== undefined) return { ok: false, reason: `lease revision ${this.revision} revoked: ${this.revokedBy}` };
    if (nowMs > this.deadline) {
      return { ok: false, reason: `lease revision ${this.revision} expired ${nowMs - this.deadline} ms ago (not renewed for ${this.ttlMs} ms)` };
    }
    return { ok: true };
  }

  /** Throws SinkFencedError unless the sink may write now; `what` names the write. */
  permit(nowMs: number, what: string): void {
    const v = this.verdict(nowMs);
    if (!v.ok) throw new SinkFencedError(`${what} refused: ${v.reason}`);
  }
}

/** A watermark as a reader sees it. */
export interface RevisionedWatermark {
  readonly persistedLsn: number;
  readonly leaseRevision: number;
}

/**
 * Readers' fence: the highest lease revision seen wins; a watermark of an
 * older revision comes from a stale owner and is refused (revision 0 is a
 * single-node sink without leases, accepted only while nothing newer was seen).
 */
export class WatermarkGate {
  private highest = 0;
  refused = 0;

  constructor(highestSeen = 0) {
    this.highest = highestSeen;
  }

  get highestRevision(): number {
    return this.highest;
  }

  /** Undefined when accepted, else why it is refused (counted). */
  check(w: RevisionedWatermark): string | undefined {
    if (w.leaseRevision < this.highest) {
      this.refused++;
      return `watermark P ${w.persistedLsn} of lease revision ${w.leaseRevision} refused: revision ${this.highest} was seen (a stale owner's)`;
    }
    this.highest = w.leaseRevision;
    return undefined;
  }
}
