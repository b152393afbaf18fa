// A WAL reader's liveness check. JetStream's ordered consumer mends most
// faults itself (missed heartbeats, a delivery-sequence gap, its consumer
// gone), but in a chaos run (seed 19: NATS server kills, a node pause and a
// node kill) one shard's consumer delivered nothing more after LSN 3085
// while its subject grew to 7867: the shard stayed in `running`, behind for
// good, and every complete read of it timed out. This check does not depend
// on how the client library got there: once nothing arrived for `stallMs`,
// the reader asks the stream for the subject's last LSN; a reader behind it
// is stalled and is reopened from what it applied (the shard's walRetry).
// An idle subject costs one last-message read per `stallMs`.

/** Why a WAL reader was found stalled (the message names both LSNs and the quiet time). */
export type StallVerdict = string | undefined;

export class StallWatch {
  private lastSeq: number;
  private lastAt: number;

  /** `fromLsn`: the first LSN the reader asked for; `now`: when it started (ms, the caller's clock). */
  constructor(
    fromLsn: number,
    readonly stallMs: number,
    now: number,
  ) {
    this.lastSeq = fromLsn - 1;
    this.lastAt = now;
  }

  /** A record arrived. */
  delivered(seq: number, now: number): void {
    if (seq > this.lastSeq) this.lastSeq = seq;
    this.lastAt = now;
  }

  /** True when nothing arrived for `stallMs`: time to ask the stream for the subject's last LSN. */
  quiet(now: number): boolean {
    return now - this.lastAt >= this.stallMs;
  }

  /**
   * With the subject's last LSN, read at `askedAt`: why the reader is stalled,
   * or undefined (it has every record, or one arrived since the ask). A reader
   * found current is watched again from now.
   */
  verdict(lastLsn: number, askedAt: number, now: number): StallVerdict {
    if (this.lastAt > askedAt) return undefined;
    if (lastLsn <= this.lastSeq) {
      this.lastAt = now;
      return undefined;
    }
    const quietMs = Math.round(now - this.lastAt);
    return `WAL consumer stalled: nothing delivered for ${quietMs} ms after LSN ${this.lastSeq} while the subject holds up to LSN ${lastLsn}; reopening it`;
  }
}
