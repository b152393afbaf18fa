// The load of bench:sustained: trades and quotes of many symbols published at a
// fixed rate (paced to the wall clock, not as fast as the node answers), each
// batch's ack latency, and the persistence lag the watermarks show: the age of
// the oldest acknowledged WAL record that no watermark covers yet.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodeWatermark } from "../protocols/codec.js";
import type { WalAppend } from "../protocols/ingest.js";
import { watermarkSubjectsOfTenant } from "../protocols/subjects.js";
import type { TickPublisher } from "../src/client/publisher.js";
import type { TickBatch } from "../src/codec/tickbatch.js";
import { RandomWalk } from "../src/demo/randomwalk.js";

/** Batches go out every SLOT_MS: a publisher that batches by time, as a feed handler does. */
export const SLOT_MS = 10;
/** Rows per batch at most (bench:ingest's batch size); a slot at a high rate sends several. */
export const BATCH_ROWS = 1000;
/** Of every slot's ticks, this share are trades and the rest quotes (as the demo feed). */
export const TRADE_SHARE = 0.25;

export interface Slot {
  readonly trades: readonly TickBatch[];
  readonly quotes: readonly TickBatch[];
}

/** `rows` as batches of at most BATCH_ROWS. */
function sizes(rows: number): number[] {
  const out: number[] = [];
  for (let left = rows; left > 0; left -= BATCH_ROWS) out.push(Math.min(BATCH_ROWS, left));
  return out;
}

/**
 * `count` slots' batches at `rate` ticks/s over `symbols`, generated once and
 * published in turn with new timestamps (`restamp`): generating every tick while
 * publishing would cost this process (on the node's cores) more than the node's work.
 */
export function slotPool(symbols: readonly string[], rate: number, count: number, seed: number): Slot[] {
  const perSlot = Math.max(2, Math.round((rate * SLOT_MS) / 1000));
  const tradeRows = Math.max(1, Math.round(perSlot * TRADE_SHARE));
  // Timestamps of today (the raw peers insert the pool as it is); publishing restamps them.
  const walk = new RandomWalk(symbols, seed, Date.now() * 1000);
  const span = (n: number): number => Math.max(1, Math.floor((n * SLOT_MS * 1000) / perSlot));
  return Array.from({ length: count }, () => ({
    trades: sizes(tradeRows).map((n) => walk.trades(n, span(n))),
    quotes: sizes(perSlot - tradeRows).map((n) => walk.quotes(n, span(n))),
  }));
}

/** `b` with its rows spread evenly over [fromMicros, fromMicros + spanMicros); a new batch (the pool's stays as it is). */
export function restamp(b: TickBatch, fromMicros: number, spanMicros: number): TickBatch {
  const ts = new Float64Array(b.rows);
  for (let i = 0; i < b.rows; i++) ts[i] = fromMicros + Math.floor((i * spanMicros) / b.rows);
  return { ...b, ts };
}

/**
 * Acknowledged WAL records not yet covered by a watermark (P) of their shard,
 * with the time each was acknowledged: the persistence lag as a user sees it
 * (ack to durable in ClickHouse), records the sink has not even read included.
 */
export class PersistLag {
  private readonly waiting = new Map<string, { lsn: number; at: number }[]>();
  private readonly persisted = new Map<string, number>();
  private readonly sub: Subscription;

  constructor(nc: NatsConnection, tenant: string) {
    this.sub = nc.subscribe(watermarkSubjectsOfTenant(tenant), {
      callback: (err, m) => {
        if (err) return;
        const w = decodeWatermark(m.data);
        const key = `${w.table}/${w.bucket}`;
        const p = Math.max(Number(w.persistedLsn), this.persisted.get(key) ?? 0);
        this.persisted.set(key, p);
        // Acks come back out of LSN order (many in flight): filter, not shift.
        const list = this.waiting.get(key);
        if (list !== undefined) this.waiting.set(key, list.filter((a) => a.lsn > p));
      },
    });
  }

  acked(table: string, appends: readonly WalAppend[], at: number): void {
    for (const a of appends) {
      const key = `${table}/${a.bucket}`;
      if (a.lsn <= (this.persisted.get(key) ?? 0)) continue;
      const list = this.waiting.get(key) ?? [];
      list.push({ lsn: a.lsn, at });
      this.waiting.set(key, list);
    }
  }

  /** Age (ms) of the oldest acknowledged record no watermark covers; 0 when every one is persisted. */
  oldestAgeMs(now = performance.now()): number {
    let oldest = now;
    for (const list of this.waiting.values()) for (const a of list) oldest = Math.min(oldest, a.at);
    return now - oldest;
  }

  get records(): number {
    let n = 0;
    for (const list of this.waiting.values()) n += list.length;
    return n;
  }

  close(): void {
    this.sub.unsubscribe();
  }
}

export interface PacedOptions {
  readonly trades: TickPublisher;
  readonly quotes: TickPublisher;
  readonly pool: readonly Slot[];
  readonly rate: number;
  readonly seconds: number;
  /** Publishes sent and not answered at most; beyond it the loop waits, and falls behind the rate. */
  readonly maxPending: number;
  readonly lag: PersistLag;
}

export interface PacedOutcome {
  readonly t0: number;
  /** Ticks sent and acknowledged. */
  readonly sent: number;
  readonly acked: number;
  /** From the first send to the last answer. */
  readonly seconds: number;
  /** Each batch's send time (performance.now()) and ack latency (ms). */
  readonly acks: readonly { readonly at: number; readonly ms: number }[];
  readonly refused: number;
  readonly firstRefusal: string | undefined;
}

/**
 * Publishes `rate` ticks/s for `seconds`: every SLOT_MS the next slot of the
 * pool, stamped with the slot's wall-clock time. A late timer (a busy machine)
 * sends the slots due at once; a node that answers too slowly holds the loop
 * at `maxPending`, and the achieved rate falls short.
 */
export async function publishPaced(o: PacedOptions): Promise<PacedOutcome> {
  const t0 = performance.now();
  const tick0 = Date.now() * 1000;
  const end = t0 + o.seconds * 1000;
  const pending = new Set<Promise<void>>();
  const acks: { at: number; ms: number }[] = [];
  let sent = 0;
  let acked = 0;
  let refused = 0;
  let firstRefusal: string | undefined;
  let lastAnswer = t0;
  const send = (pub: TickPublisher, table: string, batch: TickBatch): void => {
    const at = performance.now();
    const p = pub.publish(batch).then(
      (ack) => {
        const now = performance.now();
        lastAnswer = now;
        acked += ack.rows;
        acks.push({ at, ms: now - at });
        o.lag.acked(table, ack.appends, now);
      },
      (e: unknown) => {
        lastAnswer = performance.now();
        refused++;
        firstRefusal ??= (e as Error).message;
      },
    );
    pending.add(p);
    void p.finally(() => pending.delete(p));
    sent += batch.rows;
  };
  for (let k = 0; ; k++) {
    const due = t0 + k * SLOT_MS;
    if (due >= end) break;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    while (pending.size >= o.maxPending) await Promise.race(pending);
    const slot = o.pool[k % o.pool.length]!;
    const from = tick0 + k * SLOT_MS * 1000;
    for (const [pub, table, batches] of [[o.trades, "trades", slot.trades], [o.quotes, "quotes", slot.quotes]] as const) {
      // A slot's batches of one table cover the slot's time one after the other.
      const span = Math.floor((SLOT_MS * 1000) / batches.length);
      batches.forEach((b, j) => send(pub, table, restamp(b, from + j * span, span)));
    }
  }
  await Promise.all(pending);
  return { t0, sent, acked, seconds: (lastAnswer - t0) / 1000, acks, refused, firstRefusal };
}
