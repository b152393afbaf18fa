// The independent checker. Truth is the Ledger (every row sent, every ack with
// its LSNs) and what ClickHouse holds, read with plain SQL over HTTP (no
// Proxist code in between); the nodes' answers are checked against it, never
// used to decide it. It counts:
//   L  acknowledged rows missing: from ClickHouse after the sinks caught up, or from a node's complete answer
//   D  a row twice: in ClickHouse, in a node's answer, or in any answer a reader got during the run
//   O  a symbol's rows out of publish order: in ClickHouse by (_lsn, _row), or in an answer
//   W  a watermark that went backwards, or announced P while ClickHouse lacked rows up to P
//   S  (liveness) a shard not live exactly once 2 minutes after the last fault was healed, or a node that
//      gives no complete answer for a minute after that
// and, as corruption, rows nobody sent or stored at an LSN their ack did not name.
import { qualifiedTable } from "../../src/clickhouse/index.js";
import type { Ledger, ReaderReport } from "./workload.js";
import { checkAnswer } from "./workload.js";

export interface Findings {
  readonly lost: string[];
  readonly duplicated: string[];
  readonly outOfOrder: string[];
  readonly watermark: string[];
  /** Rows nobody sent, with another symbol, or at an LSN their ack did not name. */
  readonly corrupt: string[];
  /** Liveness: shards not live exactly once well after every fault was healed, or a node with no complete answer. */
  readonly stuck: string[];
}

export const emptyFindings = (): Findings => ({ lost: [], duplicated: [], outOfOrder: [], watermark: [], corrupt: [], stuck: [] });

export const violations = (f: Findings): number => f.lost.length + f.duplicated.length + f.outOfOrder.length + f.watermark.length + f.corrupt.length + f.stuck.length;

/**
 * Counts, where they were seen, and the first few findings of each kind, for a
 * failure message. Where: the first findings are often one reader's, and
 * rows twice in ClickHouse among thousands of reader findings went unseen.
 */
export function summarize(f: Findings, sample = 5): string {
  return (Object.entries(f) as [string, string[]][])
    .map(([k, v]) => {
      if (v.length === 0) return `${k}=0`;
      const shown = samples(v, sample);
      return `${k}=${v.length} ${JSON.stringify(bySource(v))} (${shown.join("; ")}${v.length > shown.length ? "; …" : ""})`;
    })
    .join(", ");
}

/**
 * The first finding of every source, then more in order up to `n`: a failure
 * message names what ClickHouse held twice (with its LSN) even when the
 * readers' findings come first by the hundred.
 */
function samples(v: readonly string[], n: number): string[] {
  const firstOf = new Map<string, string>();
  for (const x of v) {
    const src = x.slice(0, x.indexOf(":"));
    if (!firstOf.has(src)) firstOf.set(src, x);
  }
  const out = [...firstOf.values()];
  for (const x of v) {
    if (out.length >= Math.max(n, firstOf.size)) break;
    if (!out.includes(x)) out.push(x);
  }
  return out;
}

/** Findings of one kind counted by where they were seen ("ClickHouse", "node n1", "reader on n2"). */
export function bySource(xs: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) {
    const k = x.slice(0, x.indexOf(":"));
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

/** Plain SQL to clickhouse-server's HTTP interface; TabSeparated rows. */
export async function clickhouseRows(httpUrl: string, sql: string): Promise<string[][]> {
  const res = await fetch(httpUrl, { method: "POST", body: `${sql} FORMAT TabSeparated`, signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`ClickHouse refused ${sql}: ${text}`);
  return text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => l.split("\t"));
}

/** ClickHouse against the ledger: L, D, O and corruption of the cold data. */
export async function checkClickhouse(httpUrl: string, tenant: string, table: string, ledger: Ledger, into: Findings): Promise<{ rows: number }> {
  const rows = await clickhouseRows(httpUrl, `SELECT sym, rid, _lsn, _row FROM ${qualifiedTable(tenant, table)} ORDER BY _lsn, _row`);
  const ackedLsns = new Map<number, ReadonlySet<number>>();
  for (const a of ledger.acks) {
    const lsns = new Set(a.lsns);
    for (const r of a.rids) ackedLsns.set(r, lsns);
  }
  const seen = new Set<number>();
  const lastBySym = new Map<string, number>();
  for (const [sym, ridS, lsnS] of rows) {
    const rid = Number(ridS);
    const lsn = Number(lsnS);
    if (seen.has(rid)) into.duplicated.push(`ClickHouse: rid ${rid} (${sym}) again at LSN ${lsn}`);
    seen.add(rid);
    const prev = lastBySym.get(sym!);
    if (prev !== undefined && rid < prev) into.outOfOrder.push(`ClickHouse: ${sym} rid ${rid} at LSN ${lsn} after rid ${prev}`);
    lastBySym.set(sym!, Math.max(prev ?? -1, rid));
    if (ledger.sent.get(rid) !== sym) into.corrupt.push(`ClickHouse: rid ${rid} (${sym}) was never sent${ledger.sent.has(rid) ? ` as ${sym}` : ""}`);
    const want = ackedLsns.get(rid);
    if (want !== undefined && !want.has(lsn)) into.corrupt.push(`ClickHouse: acked rid ${rid} at LSN ${lsn}, its ack named ${[...want].join(",")}`);
  }
  for (const [rid, sym] of ledger.ackedRids()) if (!seen.has(rid)) into.lost.push(`ClickHouse: acked rid ${rid} (${sym}) missing`);
  return { rows: rows.length };
}

/** A node's complete answer (rows [sym, ts, rid]) against the ledger: every acked row once, in order, nothing unsent. */
export function checkServed(who: string, rows: readonly unknown[][], ledger: Ledger, into: Findings): void {
  const found = { duplicated: into.duplicated, outOfOrder: into.outOfOrder, phantoms: into.corrupt };
  checkAnswer(who, rows, ledger, found);
  const have = new Set(rows.map((r) => Number(r[2])));
  for (const [rid, sym] of ledger.ackedRids()) if (!have.has(rid)) into.lost.push(`${who}: acked rid ${rid} (${sym}) missing`);
}

/** Adds what the readers found during the run. */
export function addReaderFindings(r: ReaderReport, into: Findings): void {
  into.duplicated.push(...r.duplicated);
  into.outOfOrder.push(...r.outOfOrder);
  into.corrupt.push(...r.phantoms);
}
