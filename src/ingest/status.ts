// The ingest status (px.<t>.ingest._status): per producer, the highest
// producer seq the WAL holds. Pure fold over WAL records in LSN order (their
// Nats-Msg-Id and batch-size header); the node feeds it by reading the WAL
// (src/node/ingeststatus.ts), so the answer comes from the source of truth and
// survives node restarts.
import { parseWalMsgId } from "../../protocols/subjects.js";
import type { ProducerStatus } from "../../protocols/ingest.js";

interface Mark {
  seq: bigint;
  lsn: number;
  records: number;
  batchRecords: number | undefined;
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
    const m = this.marks.get(pair.producerId);
    if (m === undefined || pair.seq > m.seq) {
      this.marks.set(pair.producerId, { seq: pair.seq, lsn, records: 1, batchRecords });
    } else if (pair.seq === m.seq) {
      m.records++;
      if (lsn > m.lsn) m.lsn = lsn;
      m.batchRecords ??= batchRecords;
    }
  }

  status(producerId: string): ProducerStatus | undefined {
    const m = this.marks.get(producerId);
    if (m === undefined) return undefined;
    return { producerId, lastSeq: m.seq.toString(), lastLsn: m.lsn, records: m.records, ...(m.batchRecords === undefined ? {} : { batchRecords: m.batchRecords }) };
  }

  all(): ProducerStatus[] {
    return [...this.marks.keys()].sort().map((id) => this.status(id)!);
  }
}
