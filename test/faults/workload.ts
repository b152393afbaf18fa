// What runs while the nemesis works: publishers that ingest with producer ids
// and record every acknowledgement (producer id, seq, LSNs, the rows' ids) in a
// Ledger, and readers that query the nodes and check each answer on the spot.
//
// Every row carries its own identity so the checker needs nothing from the
// code under test to tell rows apart: `rid` is unique across the run
// (producer * 1e9 + the producer's row counter, exact in a float64) and `pk`
// is the producer. Each producer owns its symbols and publishes one batch at a
// time (the next only after the ack), so per symbol the WAL must hold rids in
// increasing order; ts grows with rid.
import type { NatsConnection } from "@nats-io/transport-node";
import { TickPublisher, rowsToBatch } from "../../src/client/publisher.js";
import type { Row } from "../../src/client/publisher.js";
import type { TickBatch } from "../../src/codec/tickbatch.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { NodeQuerier } from "../helpers/nodequery.js";

export const RID_STRIDE = 1e9;
/** Data time of a producer's row 0, µs (ts grows by 100 µs a row). */
export const TS_BASE = 1.75e15;

export interface AckRecord {
  readonly producerId: string;
  readonly seq: number;
  readonly rids: readonly number[];
  readonly lsns: readonly number[];
  /** The WAL said it had (some of) this batch already: a retry deduplicated. */
  readonly duplicate: boolean;
}

/** Everything sent and acknowledged; the checker's record of the truth. */
export class Ledger {
  readonly acks: AckRecord[] = [];
  /** rid -> symbol of every row ever sent (acked or not). */
  readonly sent = new Map<number, string>();
  /** Batches that failed for good (not acknowledged: stored or not, both are allowed). */
  failed = 0;

  ackedRids(): Map<number, string> {
    const out = new Map<number, string>();
    for (const a of this.acks) for (const r of a.rids) out.set(r, this.sent.get(r)!);
    return out;
  }

  maxLsn(): number {
    return this.acks.reduce((m, a) => Math.max(m, ...a.lsns), 0);
  }
}

/** A producer's rows: its symbols in turn, rid and ts growing. */
export class Producer {
  readonly symbols: string[];
  private next = 0;
  seq = 0;

  constructor(
    readonly index: number,
    symbols: number,
  ) {
    this.symbols = Array.from({ length: symbols }, (_, j) => `p${index}s${j}`);
  }

  /** Moves past `rows` rows without making them (to rebuild a batch sent before). */
  skip(rows: number): void {
    this.next += rows;
  }

  batch(spec: TableSpec, rows: number, ledger: Ledger): { batch: TickBatch; rids: number[] } {
    const out: Row[] = [];
    const rids: number[] = [];
    for (let i = 0; i < rows; i++, this.next++) {
      const rid = this.index * RID_STRIDE + this.next;
      const sym = this.symbols[this.next % this.symbols.length]!;
      out.push({ sym, ts: TS_BASE + this.next * 100, rid, pk: this.index });
      rids.push(rid);
      ledger.sent.set(rid, sym);
    }
    return { batch: rowsToBatch(spec, out), rids };
  }
}

export interface Running {
  stop(): Promise<void>;
}

export interface IngestOptions {
  readonly producers: number;
  readonly symbolsPerProducer: number;
  readonly rowsPerBatch: number;
  /** Pause between a producer's batches, ms (keeps the load bearable on 2 cores). */
  readonly pauseMs: number;
}

/** Starts the producers; stop() ends each after its current batch. */
export function ingest(nc: NatsConnection, tenant: string, spec: TableSpec, ledger: Ledger, o: IngestOptions, runId: string): Running {
  let go = true;
  const loops = Array.from({ length: o.producers }, async (_, k) => {
    const prod = new Producer(k + 1, o.symbolsPerProducer);
    // One batch in flight: per symbol the WAL order is the publish order. Retries (same seq) ride out faults of ~30 s.
    const pub = new TickPublisher(nc, { tenant, spec, producerId: `${runId}-p${k + 1}`, maxInFlight: 1, timeoutMs: 2_000, maxAttempts: 15 });
    while (go) {
      const { batch, rids } = prod.batch(spec, o.rowsPerBatch, ledger);
      const seq = ++prod.seq;
      try {
        const ack = await pub.publish(batch);
        ledger.acks.push({ producerId: pub.producerId, seq, rids, lsns: ack.appends.map((a) => a.lsn), duplicate: ack.appends.some((a) => a.duplicate) });
      } catch {
        ledger.failed++;
      }
      await new Promise((r) => setTimeout(r, o.pauseMs));
    }
  });
  return {
    stop: async () => {
      go = false;
      await Promise.all(loops);
    },
  };
}

/** What readers saw: answers, failures, and violations found in single answers. */
export interface ReaderReport {
  queries: number;
  errors: number;
  duplicated: string[];
  outOfOrder: string[];
  /** Rows no publisher ever sent. */
  phantoms: string[];
}

/**
 * Queries the running nodes in turn ("available": partial answers are fine
 * mid-fault) and checks each answer alone: no row twice, per symbol in rid
 * order (the answer is sorted by time and ts grows with rid), no row nobody sent.
 */
export function readers(nodes: () => { id: string; host: string; grpcPort: number }[], token: string, table: string, ledger: Ledger, pauseMs: number): Running & { report: ReaderReport } {
  const report: ReaderReport = { queries: 0, errors: 0, duplicated: [], outOfOrder: [], phantoms: [] };
  let go = true;
  const loop = (async () => {
    let turn = 0;
    while (go) {
      const list = nodes();
      const n = list[turn++ % Math.max(1, list.length)];
      if (n !== undefined) {
        const q = new NodeQuerier(n.grpcPort, token, n.host);
        try {
          const a = await q.query({ op: "range", table, columns: ["rid"], consistency: "available" }, 5_000);
          if (a.error) report.errors++;
          else {
            report.queries++;
            const before = report.outOfOrder.length;
            const dupsBefore = report.duplicated.length;
            const answeredAt = new Date().toISOString();
            checkAnswer(`reader on ${n.id}`, a.rows, ledger, report);
            // Each answer with a row twice (the first few), with what it said about itself: which shards were lagging or moving.
            const twice = report.duplicated.length - dupsBefore;
            if (twice > 0 && report.duplicated.length - twice < 20_000) console.log(`reader: answer from ${n.id} (answered by ${answeredAt}) holds ${twice} rows twice (${report.duplicated[dupsBefore]}); ${a.rows.length} rows; complete=${a.complete}; notes ${JSON.stringify(a.notes)}`);
            // The first misordered answer, with what it said about itself (lagging, missing, cold shards): to replay it.
            if (before === 0 && report.outOfOrder.length > 0) console.log(`reader: misordered answer from ${n.id}: ${misorderDetail(a.rows, report.outOfOrder[0]!)}; complete=${a.complete}; notes ${JSON.stringify(a.notes)}`);
          }
        } finally {
          q.close();
        }
      }
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  return {
    report,
    stop: async () => {
      go = false;
      await loop;
    },
  };
}

/** Where the rows of the symbol named in `finding` ("who: sym rid ...") go backwards in an answer. */
function misorderDetail(rows: readonly unknown[][], finding: string): string {
  const sym = finding.split(": ")[1]?.split(" ")[0];
  const rids = rows.filter((r) => String(r[0]) === sym).map((r) => Number(r[2]));
  const breaks = rids.flatMap((rid, i) => (i > 0 && rid < rids[i - 1]! ? [`row ${i}: ${rids[i - 1]} then ${rid}`] : []));
  return `${rows.length} rows; ${sym}: ${rids.length} rows from rid ${rids[0]} to ${rids.at(-1)}, ${breaks.length} breaks (${breaks.slice(0, 4).join("; ")})`;
}

/** Checks one answer's rows ([sym, ts, rid]) for duplicates, per-symbol order and phantoms; adds findings to `into`. */
export function checkAnswer(who: string, rows: readonly unknown[][], ledger: Ledger, into: Pick<ReaderReport, "duplicated" | "outOfOrder" | "phantoms">): void {
  const seen = new Set<number>();
  const lastBySym = new Map<string, number>();
  for (const [sym, , ridV] of rows) {
    const rid = Number(ridV);
    const s = String(sym);
    if (seen.has(rid)) into.duplicated.push(`${who}: rid ${rid} (${s}) twice in one answer`);
    seen.add(rid);
    const prev = lastBySym.get(s);
    if (prev !== undefined && rid < prev) into.outOfOrder.push(`${who}: ${s} rid ${rid} after ${prev}`);
    lastBySym.set(s, Math.max(prev ?? -1, rid));
    if (ledger.sent.get(rid) !== s) into.phantoms.push(`${who}: rid ${rid} (${s}) was never sent${ledger.sent.has(rid) ? ` (sent as ${ledger.sent.get(rid)})` : ""}`);
  }
}
