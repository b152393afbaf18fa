// A reader that subscribes (the workload's feed side): a raw-tick feed
// (op range, column rid) over gRPC from the first WAL record, through
// FeedSubscriber; when its node dies, stops, is cut off or says nothing for
// a while, it subscribes on the next running node from the offset of the last
// update it got. Offsets name WAL positions, not nodes: the feed must go on
// exactly, so every row received is checked on the spot (no rid twice, per
// symbol in rid order, nothing nobody sent) and, at the end, every acked row
// of the followed symbols must have arrived. One producer's symbols only: on
// 2 shared cores a feed of every row fell minutes behind (RESOURCE_EXHAUSTED
// slow-consumer ends, seed 1909), which says nothing about gaps. A missing row
// is a gap when the feed already covered every WAL record of its batch (each
// update names the LSN it covers per shard), else the feed is behind.
import type { Table } from "apache-arrow";
import { FeedSubscriber } from "../../src/client/feeds.js";
import type { Ledger } from "./workload.js";

export interface FeedReport {
  updates: number;
  rows: number;
  /** Subscriptions after the first (on another node or the same one). */
  resubscribes: number;
  /** Why subscriptions ended, a few. */
  ends: string[];
  readonly duplicated: string[];
  readonly outOfOrder: string[];
  readonly phantoms: string[];
  readonly received: Set<number>;
  /** Per bucket, the highest LSN an update said it covers. */
  readonly covered: Map<number, number>;
}

/** How long a subscription may stay silent while rows are acked before the reader moves on. */
const SILENT_MS = 8_000;

export function feedReader(
  nodes: () => { id: string; host: string; grpcPort: number }[],
  token: string,
  table: string,
  ledger: Ledger,
  fromMicros: number,
  symbols: readonly string[],
): { report: FeedReport; stop(): Promise<void>; drain(timeoutMs: number): Promise<{ gaps: number[]; behind: number[] }> } {
  const report: FeedReport = { updates: 0, rows: 0, resubscribes: 0, ends: [], duplicated: [], outOfOrder: [], phantoms: [], received: new Set(), covered: new Map() };
  const followed = new Set(symbols);
  const lastBySym = new Map<string, number>();
  let offset: string | undefined;
  let go = true;
  let current: FeedSubscriber | undefined;
  const take = (t: Table, on: string): void => {
    const sym = t.getChild("sym");
    const rid = t.getChild("rid");
    for (let i = 0; i < t.numRows; i++) {
      const s = String(sym!.get(i));
      const r = Number(rid!.get(i));
      if (report.received.has(r)) report.duplicated.push(`feed on ${on}: rid ${r} (${s}) twice`);
      report.received.add(r);
      const prev = lastBySym.get(s);
      if (prev !== undefined && r < prev) report.outOfOrder.push(`feed on ${on}: ${s} rid ${r} after ${prev}`);
      lastBySym.set(s, Math.max(prev ?? -1, r));
      if (ledger.sent.get(r) !== s) report.phantoms.push(`feed on ${on}: rid ${r} (${s}) was never sent`);
      report.rows++;
    }
  };
  const loop = (async () => {
    for (let turn = 0; go; turn++) {
      const list = nodes();
      const n = list[turn % Math.max(1, list.length)];
      if (n === undefined) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (turn > 0) report.resubscribes++;
      const sub = new FeedSubscriber({ address: `${n.host}:${n.grpcPort}`, token, feed: { op: "range", table, columns: ["rid"], symbols: [...symbols] }, from: offset ?? { time: fromMicros }, reconnect: false });
      current = sub;
      let lastAt = Date.now();
      let ackedAt = ledger.acks.length;
      // A silent subscription (its node stopped or cut off) while acks go on is left for the next node.
      const watchdog = setInterval(() => {
        if (ledger.acks.length > ackedAt && Date.now() - lastAt > SILENT_MS) {
          report.ends.push(`${n.id}: silent ${SILENT_MS} ms`);
          sub.close();
        }
      }, 1_000);
      try {
        for await (const u of sub.updates()) {
          lastAt = Date.now();
          ackedAt = ledger.acks.length;
          report.updates++;
          take(u.table, n.id);
          for (const sh of u.shards) if (sh.table === table) report.covered.set(sh.bucket, Math.max(report.covered.get(sh.bucket) ?? 0, sh.lsn));
          offset = u.offset;
          if (!go) break;
        }
      } catch (e) {
        if (report.ends.length < 50) report.ends.push(`${n.id}: ${(e as Error).message.split("\n")[0]}`);
      } finally {
        clearInterval(watchdog);
        sub.close();
      }
      if (go) await new Promise((r) => setTimeout(r, 200));
    }
  })();
  return {
    report,
    /**
     * Waits until every acked row of the followed symbols arrived (or
     * `timeoutMs`); returns those still missing: gaps (every WAL record of
     * their batch covered by an update, so the feed skipped them) and behind.
     */
    drain: async (timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      const missing = (): number[] => [...ledger.ackedRids()].filter(([r, sym]) => followed.has(sym) && !report.received.has(r)).map(([r]) => r);
      while (missing().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      const lsnsOf = new Map<number, readonly number[]>();
      for (const a of ledger.acks) for (const r of a.rids) lsnsOf.set(r, a.lsns);
      const minCovered = report.covered.size === 0 ? 0 : Math.min(...report.covered.values());
      const gaps: number[] = [];
      const behind: number[] = [];
      for (const r of missing()) (Math.max(...(lsnsOf.get(r) ?? [Infinity])) <= minCovered ? gaps : behind).push(r);
      return { gaps, behind };
    },
    stop: async () => {
      go = false;
      current?.close();
      await loop;
    },
  };
}
