// A reader that subscribes (the workload's feed side): a raw-tick feed
// (op range, column rid) over gRPC from the first WAL record, through
// FeedSubscriber; when its node dies, stops, is cut off or says nothing for
// a while, it subscribes on the next running node from the offset of the last
// update it got. Offsets name WAL positions, not nodes: the feed must go on
// exactly, so every row received is checked on the spot (no rid twice, per
// symbol in rid order, nothing nobody sent) and, at the end, every acked row
// must have arrived (a gap otherwise).
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
}

/** How long a subscription may stay silent while rows are acked before the reader moves on. */
const SILENT_MS = 8_000;

export function feedReader(
  nodes: () => { id: string; host: string; grpcPort: number }[],
  token: string,
  table: string,
  ledger: Ledger,
  fromMicros: number,
): { report: FeedReport; stop(): Promise<void>; drain(timeoutMs: number): Promise<number> } {
  const report: FeedReport = { updates: 0, rows: 0, resubscribes: 0, ends: [], duplicated: [], outOfOrder: [], phantoms: [], received: new Set() };
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
      const sub = new FeedSubscriber({ address: `${n.host}:${n.grpcPort}`, token, feed: { op: "range", table, columns: ["rid"] }, from: offset ?? { time: fromMicros }, reconnect: false });
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
    /** Waits until every acked row arrived (or `timeoutMs`); returns the acked rows still missing. */
    drain: async (timeoutMs: number) => {
      const deadline = Date.now() + timeoutMs;
      const missing = (): number => [...ledger.ackedRids().keys()].filter((r) => !report.received.has(r)).length;
      while (missing() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      return missing();
    },
    stop: async () => {
      go = false;
      current?.close();
      await loop;
    },
  };
}
