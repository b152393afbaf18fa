// pxctl top: a refreshing view of the nodes' /metrics (the same figures
// Prometheus scrapes): per node the ingest rate, ack p99 and query rate; per
// shard its state, hot rows and bytes, apply rate, P, sink lag, apply-lag and
// flush p99. Rates and quantiles come from the difference of two scrapes.
import type { OutputFormat } from "./args.js";
import { CliError, EXIT } from "./exitcodes.js";
import { bucketQuantile, parsePromText } from "./promtext.js";
import type { Sample } from "./promtext.js";
import { structured } from "./render.js";

export interface TopNode {
  readonly url: string;
  readonly ingestTicksPerS: number;
  readonly ackP99Ms: number | undefined;
  readonly queriesPerS: number;
}

export interface TopShard {
  readonly node: string;
  readonly shard: string;
  readonly state: string;
  readonly rows: number;
  readonly hotBytes: number;
  readonly appliedPerS: number;
  readonly persistedLsn: number;
  readonly sinkLagS: number | undefined;
  readonly applyLagP99Ms: number | undefined;
  readonly flushP99Ms: number | undefined;
}

export interface TopView {
  readonly nodes: readonly TopNode[];
  readonly shards: readonly TopShard[];
}

const sum = (xs: readonly Sample[], name: string, match: (l: Readonly<Record<string, string>>) => boolean = () => true): number =>
  xs.filter((s) => s.name === name && match(s.labels)).reduce((n, s) => n + s.value, 0);

/** p99 in ms of the observations between two scrapes of a histogram (optionally of one shard). */
function p99Ms(prev: readonly Sample[], cur: readonly Sample[], name: string, match: (l: Readonly<Record<string, string>>) => boolean = () => true): number | undefined {
  const les = new Map<number, number>();
  for (const [xs, sign] of [[cur, 1], [prev, -1]] as const) {
    for (const s of xs) {
      if (s.name !== `${name}_bucket` || !match(s.labels)) continue;
      const le = s.labels.le === "+Inf" ? Infinity : Number(s.labels.le);
      les.set(le, (les.get(le) ?? 0) + sign * s.value);
    }
  }
  const q = bucketQuantile(0.99, [...les.entries()]);
  return q === undefined ? undefined : q * 1000;
}

/** The view between two scrapes of each node, `seconds` apart. */
export function topView(scrapes: readonly { readonly url: string; readonly prev: readonly Sample[]; readonly cur: readonly Sample[] }[], seconds: number): TopView {
  const nodes: TopNode[] = [];
  const shards: TopShard[] = [];
  for (const { url, prev, cur } of scrapes) {
    const rate = (name: string, match?: (l: Readonly<Record<string, string>>) => boolean) => Math.max(0, sum(cur, name, match) - sum(prev, name, match)) / seconds;
    nodes.push({ url, ingestTicksPerS: rate("px_ingest_rows_accepted_total"), ackP99Ms: p99Ms(prev, cur, "px_ingest_ack_seconds"), queriesPerS: rate("px_query_seconds_count") });
    for (const s of cur.filter((x) => x.name === "px_shard_rows")) {
      const { tenant, table, bucket } = s.labels;
      const mine = (l: Readonly<Record<string, string>>) => l.tenant === tenant && l.table === table && l.bucket === bucket;
      const state = cur.find((x) => x.name === "px_shard_state" && mine(x.labels) && x.value === 1)?.labels.state ?? "?";
      const lag = cur.find((x) => x.name === "px_sink_lag_seconds" && mine(x.labels));
      shards.push({
        node: url,
        shard: `${tenant}/${table}/${bucket}`,
        state,
        rows: s.value,
        hotBytes: sum(cur, "px_shard_bytes", mine),
        appliedPerS: rate("px_shard_applied_records_total", mine),
        persistedLsn: sum(cur, "px_shard_persisted_lsn", mine),
        sinkLagS: lag?.value,
        applyLagP99Ms: p99Ms(prev, cur, "px_shard_apply_lag_seconds", mine),
        flushP99Ms: p99Ms(prev, cur, "px_sink_flush_seconds", mine),
      });
    }
  }
  return { nodes, shards: shards.sort((a, b) => a.shard.localeCompare(b.shard)) };
}

const ms = (v: number | undefined): string => (v === undefined ? "-" : v.toFixed(1));

function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n");
}

export function topText(v: TopView): string {
  const nodes = table([["NODE", "INGEST TICKS/S", "ACK P99 MS", "QUERIES/S"], ...v.nodes.map((n) => [n.url, n.ingestTicksPerS.toFixed(0), ms(n.ackP99Ms), n.queriesPerS.toFixed(1)])]);
  const shards = table([
    ["SHARD", "STATE", "ROWS", "HOT MB", "APPLIED/S", "P", "SINK LAG S", "APPLY P99 MS", "FLUSH P99 MS"],
    ...v.shards.map((s) => [s.shard, s.state, String(s.rows), (s.hotBytes / 1048576).toFixed(1), s.appliedPerS.toFixed(1), String(s.persistedLsn), s.sinkLagS === undefined ? "-" : s.sinkLagS.toFixed(1), ms(s.applyLagP99Ms), ms(s.flushP99Ms)]),
  ]);
  return `${nodes}\n\n${shards}`;
}

async function scrape(url: string): Promise<Sample[]> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    return parsePromText(await res.text());
  } catch (e) {
    throw new CliError(EXIT.unreachable, `cannot read metrics at ${url} (${(e as Error).message}); pass each node's /metrics with --metrics URL[,URL]`, { cause: e });
  }
}

export interface TopCommand {
  readonly urls: readonly string[];
  readonly intervalSeconds: number;
  readonly once: boolean;
}

/** One view of the nodes' metrics: two scrapes `intervalSeconds` apart (what `pxctl status --metrics` shows). */
export async function metricsView(urls: readonly string[], intervalSeconds: number): Promise<TopView> {
  const prev = await Promise.all(urls.map(scrape));
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, intervalSeconds * 1000));
  const cur = await Promise.all(urls.map(scrape));
  return topView(urls.map((url, i) => ({ url, prev: prev[i]!, cur: cur[i]! })), (Date.now() - t0) / 1000);
}

/** Refreshes until interrupted on a terminal; with --once (or not on a terminal) prints one view (two scrapes apart) and returns. */
export async function runTop(c: TopCommand, output: OutputFormat, io: { readonly stdout: (text: string) => void }): Promise<number> {
  let prev = await Promise.all(c.urls.map(scrape));
  const live = !c.once && process.stdout.isTTY === true && output === "table";
  for (;;) {
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, c.intervalSeconds * 1000));
    const cur = await Promise.all(c.urls.map(scrape));
    const view = topView(
      c.urls.map((url, i) => ({ url, prev: prev[i]!, cur: cur[i]! })),
      (Date.now() - t0) / 1000,
    );
    if (!live) {
      io.stdout(output === "table" ? topText(view) : structured(view, output));
      return EXIT.ok;
    }
    // Clear the screen and home the cursor, then redraw.
    io.stdout(`\x1b[2J\x1b[H${new Date().toISOString().slice(11, 19)}  pxctl top (every ${c.intervalSeconds} s, Ctrl-C quits)\n\n${topText(view)}`);
    prev = cur;
  }
}
