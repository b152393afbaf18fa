// The ingest status (px.<t>.ingest._status): per producer, the highest
// producer seq the WAL holds, and among its most recent seqs the ones below it
// the WAL lacks (a batch in flight when an outage hit, with later ones stored)
// or holds only in part. Pure fold over WAL records in LSN order (their
// Nats-Msg-Id and batch-size header); the node feeds it by reading the WAL
// (src/node/ingeststatus.ts), so the answer comes from the source of truth and
// survives node restarts.
import { parseWalMsgId } from "../../protocols/subjects.js";
import type { ProducerStatus } from "../../protocols/ingest.js";

/** Seqs per producer whose records are tracked: gaps and cut batches are reported within the highest this many. */
export const RECENT_SEQS = 1024;

interface Batch {
  records: number;
  batchRecords: number | undefined;
}

interface Mark {
  seq: bigint;
  lsn: number;
  /** The most recent seqs (at most RECENT_SEQS, the highest) with their records. */
  readonly recent: Map<bigint, Batch>;
  /** The lowest seq ever seen: below it nothing is reported missing. */
  lowest: bigint;
}

export class ProducerIndex {
  /** Every WAL record up to this LSN is folded in. */
  scannedTo = 0;
  private readonly marks = new Map<string, Mark>();

  /** Folds one WAL record; `batchRecords` is the Px-Batch-Records header of a batch's first record. */
  add(lsn: number, msgId: string | undefined, batchRecords: number | undefined): void {
    if (lsn > this.scannedTo) this.scannedTo = lsn;
    if (msgId === undefined) return; // a record without a producer pair (written before pairs were minted)
    const pair = parseWalMsgId(msgId);
    if (pair === undefined) return;
    let m = this.marks.get(pair.producerId);
    if (m === undefined) this.marks.set(pair.producerId, (m = { seq: pair.seq, lsn, recent: new Map(), lowest: pair.seq }));
    if (pair.seq < m.lowest) m.lowest = pair.seq;
    if (pair.seq > m.seq) m.seq = pair.seq;
    if (pair.seq === m.seq && lsn > m.lsn) m.lsn = lsn;
    if (pair.seq <= m.seq - BigInt(RECENT_SEQS)) return; // too old to be tracked
    const b = m.recent.get(pair.seq);
    if (b === undefined) m.recent.set(pair.seq, { records: 1, batchRecords });
    else {
      b.records++;
      b.batchRecords ??= batchRecords;
    }
    if (m.recent.size > RECENT_SEQS) {
      const floor = m.seq - BigInt(RECENT_SEQS);
      for (const s of m.recent.keys()) if (s <= floor) m.recent.delete(s);
    }
  }

  /** `listMax`: entries of `missing` and `cut` at most (the every-producer answer lists a few; ask by id for all). */
  status(producerId: string, listMax = RECENT_SEQS): ProducerStatus | undefined {
    const m = this.marks.get(producerId);
    if (m === undefined) return undefined;
    const last = m.recent.get(m.seq)!;
    const missing: string[] = [];
    const cut: string[] = [];
    const from = m.seq - BigInt(RECENT_SEQS) + 1n > m.lowest ? m.seq - BigInt(RECENT_SEQS) + 1n : m.lowest;
    for (let s = from; s <= m.seq; s++) {
      const b = m.recent.get(s);
      if (b === undefined) missing.push(s.toString());
      else if (b.batchRecords !== undefined && b.records < b.batchRecords) cut.push(s.toString());
    }
    const more = missing.length > listMax || cut.length > listMax;
    return {
      producerId,
      lastSeq: m.seq.toString(),
      lastLsn: m.lsn,
      records: last.records,
      ...(last.batchRecords === undefined ? {} : { batchRecords: last.batchRecords }),
      missing: missing.slice(0, listMax),
      cut: cut.slice(0, listMax),
      ...(more ? { more: true } : {}),
    };
  }

  all(): ProducerStatus[] {
    return [...this.marks.keys()].sort().map((id) => this.status(id, 16)!);
  }
}
