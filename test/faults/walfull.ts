// The nats-disk-full fault as an operator who sized the store sees it: the
// WAL's JetStream store is full and JetStream refuses every append by name
// (max_bytes reached, discard new) while everything it holds stays. The WAL
// stream's max_bytes is lowered to what it holds plus a margin far larger than
// the appends of the moment (on nats-server 2.9 a limit below the data drops
// the oldest records, the anchor first; 2.10 keeps them on a discard-new
// stream, nats-server #4775), then the margin is filled with filler records
// on the anchor subject (no WAL reader reads it). heal() deletes each filler
// by its sequence (interior deletes: the first sequence stays) and puts the
// limit back. Why not a really full disk (diskfull.ts,
// PX_FAULTS_DISK_FULL=enospc): nats-server 2.9 loses acknowledged writes of
// the replica whose disk filled up (README, Durability), which no Proxist
// setting prevents; a store limit below the disk keeps JetStream from it.
// Open: seed 19 runs with this fault found WAL replicas drifting apart by a
// sequence later on, also with the fillers and no limit (README, "Disk full,
// investigated"): the fillers or their deletes, not the refusals.
import type { JetStreamManager } from "@nats-io/jetstream";
import { walAnchorSubject, walStream } from "../../protocols/subjects.js";
import { TaggedError } from "../../protocols/tagged.js";
import { walFullCause } from "../../src/wal/gap.js";

/** Room left above what the WAL holds when the limit is lowered: minutes of this suite's appends. */
const MARGIN_BYTES = 8 * 1024 * 1024;
/** Filler sizes, largest first: each is published until JetStream refuses it. */
const FILLER_BYTES = [256 * 1024, 16 * 1024, 1024] as const;
const MAX_FILLERS = 2_000;

/** The stream's first sequence moved while the fault was made: records were dropped (the run stops on it, never hides it). */
export class WalLimitDroppedError extends TaggedError("WalLimitDroppedError") {}

export class WalFull {
  private readonly fillers: number[] = [];

  private constructor(
    private readonly jsm: JetStreamManager,
    private readonly tenant: string,
    /** The limit before the fault, put back by release(). */
    private readonly maxBytes: number,
    private readonly firstSeq: number,
    readonly capBytes: number,
  ) {}

  private get stream(): string {
    return walStream(this.tenant);
  }

  /** Lowers the tenant's WAL limit and fills it; the WAL then refuses appends until release(). */
  /** `marginBytes`: room above what the WAL holds (a negative one makes the limit drop records: the tests' negative control). */
  static async fill(jsm: JetStreamManager, tenant: string, marginBytes = MARGIN_BYTES): Promise<WalFull> {
    const name = walStream(tenant);
    const before = await jsm.streams.info(name);
    const cap = before.state.bytes + marginBytes;
    const full = new WalFull(jsm, tenant, before.config.max_bytes, before.state.first_seq, cap);
    await jsm.streams.update(name, { ...before.config, max_bytes: cap });
    await full.checkFirstSeq();
    const js = jsm.jetstream();
    for (const size of FILLER_BYTES) {
      const payload = new Uint8Array(size);
      while (full.fillers.length < MAX_FILLERS) {
        try {
          full.fillers.push((await js.publish(walAnchorSubject(tenant), payload, { timeout: 5_000 })).seq);
        } catch (e) {
          if (walFullCause((e as Error).message) === undefined) {
            await full.release();
            throw e;
          }
          break;
        }
      }
    }
    return full;
  }

  private async checkFirstSeq(): Promise<void> {
    const now = (await this.jsm.streams.info(this.stream)).state.first_seq;
    if (now === this.firstSeq) return;
    await this.release();
    throw new WalLimitDroppedError(`the nats-disk-full fault dropped WAL records: ${this.stream}'s first sequence went ${this.firstSeq} -> ${now} (limit ${this.capBytes} bytes)`);
  }

  get fillerCount(): number {
    return this.fillers.length;
  }

  /** The stream now, for the log. */
  async state(): Promise<string> {
    const i = await this.jsm.streams.info(this.stream);
    return `${this.stream}: ${i.state.bytes} of ${i.config.max_bytes} bytes, seq ${i.state.first_seq}..${i.state.last_seq}, ${this.fillers.length} filler records`;
  }

  /** Deletes the fillers, puts the limit back and checks that the first sequence did not move. */
  async release(): Promise<void> {
    for (const seq of this.fillers.splice(0)) await this.jsm.streams.deleteMessage(this.stream, seq, false);
    const i = await this.jsm.streams.info(this.stream);
    await this.jsm.streams.update(this.stream, { ...i.config, max_bytes: this.maxBytes });
    const now = (await this.jsm.streams.info(this.stream)).state.first_seq;
    if (now !== this.firstSeq) throw new WalLimitDroppedError(`the nats-disk-full fault dropped WAL records: ${this.stream}'s first sequence went ${this.firstSeq} -> ${now}`);
  }
}
