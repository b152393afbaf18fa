// Feeds benchmark (issue 14): a standalone node process (gRPC API, every
// shard) and a TypeScript publisher of 1,000 random-walk symbols; measures
// ingest-ack-to-consumer latency of a raw and a VWAP feed over gRPC Subscribe,
// the fan-out latency of one materialized feed read by many NATS consumers,
// gaps and duplicates of a subscriber that resumes from its offsets, and the
// ingest rate with feeds against without. Writes bench/results/feeds.json.
// The NATS consumers run in a child process of their own (this file with
// --fanout), each on its own connection, as separate clients would: in the
// measuring process they shared its event loop and its connection, whose
// pending bytes (100 consumers x 256 messages) made nats-server cut it off as
// a slow consumer, and the publisher with it.
// BENCH_TICKS / BENCH_SUBSCRIBERS shrink a smoke run (the committed figures use the defaults).
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { loadavg } from "node:os";
import { MetadataStore } from "../src/control/index.js";
import { TickPublisher } from "../src/client/publisher.js";
import { FeedSubscriber } from "../src/client/feeds.js";
import type { FeedUpdate } from "../src/client/feeds.js";
import { createToken } from "../src/auth/index.js";
import { RandomWalk, symbolNames } from "../src/demo/randomwalk.js";
import { startNatsServer } from "../src/runtime/servers/nats.js";
import { DEFAULT_CLUSTER_SPEC, parseClusterSpec } from "../protocols/tablespec.js";
import { HDR_FEED_OFFSET, feedStream, feedSubject, walStream } from "../protocols/subjects.js";
import { spawnNodeProcess } from "../test/helpers/nodeproc.js";
import { FeedRunner, planFeed } from "../src/feed/index.js";
import { percentile, round, writeResult } from "./lib.js";

const TICKS = Number(process.env.BENCH_TICKS ?? 3_000_000);
/** The paced rate latencies are measured at (ticks/s; the issue's 100 k), and for how long. */
const RATE = Number(process.env.BENCH_FEED_RATE ?? 100_000);
const PACED_S = Number(process.env.BENCH_FEED_SECONDS ?? 10);
const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 100);
/** The second fan-out rate (ticks/s): one this 2-core machine carries beside 100 consumers of a raw feed. */
const FANOUT_LOW_RATE = Number(process.env.BENCH_FANOUT_LOW_RATE ?? 20_000);
const BATCH = 1000;
const WINDOW = 32;
const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables.find((t) => t.name === "trades")!;

/**
 * The feed operators' own cost, in this process before any server starts: the
 * raw feed and the bench's VWAP feed (1 m window) folding the same 1,000
 * records of 1,000 ticks (1,000 symbols, 10 ms of market time a record: 100 k
 * ticks/s), median of 3 passes, in ns per tick.
 */
function foldCost(): { raw_ns_per_tick: number; vwap_ns_per_tick: number; vwap_vs_raw_ratio: number } {
  const tables = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables;
  const walk = new RandomWalk(symbolNames(1000), 7, 1_700_000_000_000_000);
  const records = Array.from({ length: 1000 }, (_, i) => ({ table: "trades", bucket: i % trades.shards, lsn: i + 1, batch: walk.trades(BATCH, 10_000) }));
  const perTick = (query: Record<string, unknown>): number => {
    const plan = planFeed("default", { query }, (t) => tables.find((x) => x.name === t), () => tables.map((t) => t.name));
    const passes = [0, 1, 2].map(() => {
      const runner = new FeedRunner(plan);
      const t0 = performance.now();
      let rows = 0;
      for (const r of records) rows += runner.push(r)?.table.rows ?? 0;
      if (rows !== records.length * BATCH) throw new Error(`the ${String(query.op)} feed sent ${rows} rows of ${records.length * BATCH}`);
      return ((performance.now() - t0) * 1e6) / rows;
    });
    return round(passes.sort((a, b) => a - b)[1]!);
  };
  const raw = perTick({ op: "range", table: "trades", columns: ["price"] });
  const vwap = perTick({ op: "rolling", table: "trades", window: "1m", columns: [], aggregates: [{ fn: "vwap", column: "price", weight: "size" }] });
  return { raw_ns_per_tick: raw, vwap_ns_per_tick: vwap, vwap_vs_raw_ratio: round(vwap / raw) };
}

/** Publishes `ticks` ticks as fast as the window allows; records each ack's LSNs with its time. */
async function ingest(pub: TickPublisher, walk: RandomWalk, ticks: number, ackAt: Map<number, number>): Promise<number> {
  const n = Math.ceil(ticks / BATCH);
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: WINDOW }, async () => {
      while (next++ < n) {
        const ack = await pub.publish(walk.trades(BATCH, 1_000));
        const now = performance.now();
        for (const a of ack.appends) ackAt.set(a.lsn, now);
      }
    }),
  );
  return (n * BATCH) / ((performance.now() - t0) / 1000);
}

/**
 * Publishes at `rate` ticks/s for `seconds` (a 1,000-tick batch every 1000 * 1000 / rate ms, on the wall clock,
 * at most WINDOW in flight): latencies measured at a rate the machine sustains, not under a backlog. Returns the rate reached.
 */
async function paced(pub: TickPublisher, walk: RandomWalk, rate: number, seconds: number, ackAt: Map<number, number>): Promise<number> {
  const n = Math.ceil((rate * seconds) / BATCH);
  const everyMs = (BATCH * 1000) / rate;
  const inflight = new Set<Promise<void>>();
  let rows = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const ahead = t0 + i * everyMs - performance.now();
    if (ahead > 1) await new Promise((r) => setTimeout(r, ahead));
    const p: Promise<void> = pub
      .publish(walk.trades(BATCH, 1_000))
      .then((ack) => {
        const now = performance.now();
        rows += ack.rows;
        for (const a of ack.appends) ackAt.set(a.lsn, now);
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
    if (inflight.size >= WINDOW) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  return rows / ((performance.now() - t0) / 1000);
}

/** Latency of each update: its arrival minus the ack of the newest LSN it covers (ms; the ack may come later: then 0). */
function latencyOf(arrivals: readonly { lsn: number; at: number }[], ackAt: ReadonlyMap<number, number>): number[] {
  return arrivals.flatMap(({ lsn, at }) => {
    const a = ackAt.get(lsn);
    return a === undefined ? [] : [Math.max(0, at - a)];
  });
}

const maxLsn = (u: FeedUpdate): number => Math.max(...u.shards.map((s) => s.lsn));

/** The newest LSN a feed message covers, from its Px-Feed-Offset header (a base64url JSON token whose `l` holds each shard's LSN). */
const offsetLsn = (token: string): number => Math.max(...Object.values((JSON.parse(Buffer.from(token, "base64url").toString()) as { l: Record<string, number> }).l));

/** Wall-clock milliseconds with sub-millisecond resolution: comparable across this process and the consumers' child. */
const wallMs = (): number => performance.timeOrigin + performance.now();

/** What the consumers' process sends back: per arrival the newest LSN the message covers and its wall-clock time. */
interface FanReport {
  lsn: number[];
  at: number[];
  /** Connection events other than pings (a disconnect is nats-server cutting a slow consumer off). */
  events: string[];
}

/**
 * The consumers' process: `n` NATS clients, each on its own connection, each
 * reading the materialized feed `bench_raw` from `startSeq` with a JetStream
 * ordered consumer. Tells the parent "ready" once all consume; on "stop" sends
 * its FanReport and exits.
 */
async function fanoutChild(natsUrl: string, n: number, startSeq: number): Promise<void> {
  const report: FanReport = { lsn: [], at: [], events: [] };
  const conns: NatsConnection[] = [];
  for (let i = 0; i < n; i++) {
    const c = await connect({ servers: natsUrl, noAsyncTraces: true, name: `bench-fanout-${i}` });
    conns.push(c);
    void (async () => {
      for await (const st of c.status()) if (st.type !== "ping" && st.type !== "close") report.events.push(`${i}:${st.type}`);
    })();
    const consumer = await jetstream(c).consumers.get(feedStream("default"), { filter_subjects: feedSubject("default", "bench_raw"), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: startSeq });
    const msgs = await consumer.consume({ max_messages: 256 });
    void (async () => {
      for await (const m of msgs) {
        const token = m.headers?.get(HDR_FEED_OFFSET);
        if (!token) continue;
        report.lsn.push(offsetLsn(token));
        report.at.push(wallMs());
      }
    })();
  }
  process.on("message", (m) => {
    if (m !== "stop") return;
    process.send!(report, () => void Promise.all(conns.map((c) => c.close())).finally(() => process.exit(0)));
  });
  process.send!("ready");
}

/** Starts the consumers' process; resolves once every consumer reads. `stop()` ends it and returns its report. */
async function startFanout(natsUrl: string, n: number, startSeq: number): Promise<{ stop: () => Promise<FanReport> }> {
  const child = fork(fileURLToPath(import.meta.url), ["--fanout", natsUrl, String(n), String(startSeq)], { execArgv: ["--import", "tsx"], stdio: ["ignore", "inherit", "inherit", "ipc"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  let answer: ((r: FanReport) => void) | undefined;
  await new Promise<void>((resolve, reject) => {
    child.on("message", (m) => {
      if (m === "ready") resolve();
      else answer?.(m as FanReport);
    });
    void exited.then(() => reject(new Error("the consumers' process exited before it was ready")));
  });
  return {
    stop: async () => {
      const r = await new Promise<FanReport>((resolve, reject) => {
        answer = resolve;
        child.send("stop");
        void exited.then(() => reject(new Error("the consumers' process exited without its report")));
      });
      await exited;
      return r;
    },
  };
}

async function main(): Promise<void> {
  const loadBefore = round(loadavg()[0]!, 2);
  const fold = foldCost();
  console.error(`feed operators, ns per tick: raw ${fold.raw_ns_per_tick}, vwap ${fold.vwap_ns_per_tick}`);
  const nats = await startNatsServer({ auth: "open" });
  const nc = await connect({ servers: nats.url, noAsyncTraces: true });
  const clientEvents: string[] = [];
  void (async () => {
    for await (const st of nc.status()) if (st.type !== "ping" && st.type !== "close") clientEvents.push(st.type);
  })();
  const spec = parseClusterSpec({ tenants: [{ ...JSON.parse(JSON.stringify(DEFAULT_CLUSTER_SPEC.tenants[0])), feeds: [{ name: "bench_raw", query: { op: "range", table: "trades", columns: ["price"] } }] }] });
  await (await MetadataStore.open(nc)).applyCurrent(spec);
  const node = await spawnNodeProcess(nats.url);
  try {
    const token = await createToken(nc, { tenant: "default", role: "reader" });
    const address = `127.0.0.1:${node.grpcPort}`;
    const walk = new RandomWalk(symbolNames(1000), 1, Date.now() * 1000);
    const pub = new TickPublisher(nc, { tenant: "default", spec: trades, maxInFlight: WINDOW });

    // 1. Without feeds (the materialized feed runs in the node either way: its cost is part of both).
    await ingest(pub, walk, Math.min(TICKS, 200_000), new Map()); // warm-up
    const without = await ingest(pub, walk, TICKS, new Map());
    console.error(`ingest without subscriptions: ${Math.round(without)} ticks/s`);

    // 2. The latencies, each part alone at a paced RATE the machine can sustain (unpaced ingest outruns the feeds:
    // latencies there are the backlog's): a raw and a VWAP subscription over gRPC, then SUBSCRIBERS NATS consumers of
    // the materialized feed. Together they are more than this 2-core machine carries: 100 consumers of a raw feed at
    // 100 k ticks/s are ~430 MB/s through nats-server on the same cores as the node and every client.
    /** Publishes a batch every 100 ms until every reader got an update of a record published after it started; returns the ms each took. */
    const untilLive = async (readers: readonly (readonly { lsn: number }[])[]): Promise<(number | null)[]> => {
      const since = performance.now();
      const first: (number | null)[] = readers.map(() => null);
      let liveLsn = Infinity;
      for (let i = 0; first.some((t) => t === null) && performance.now() - since < 120_000; i++) {
        if (i % 5 === 0) {
          const ack = await pub.publish(walk.trades(BATCH, 1_000));
          liveLsn = Math.min(liveLsn, ...ack.appends.map((a) => a.lsn));
        }
        readers.forEach((a, r) => {
          if (first[r] === null && a.some((x) => x.lsn >= liveLsn)) first[r] = round(performance.now() - since);
        });
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 500));
      return first;
    };
    const openSubs = () => {
      const subs = [
        new FeedSubscriber({ address, token, feed: { op: "range", table: "trades", columns: ["price"] } }),
        new FeedSubscriber({ address, token, feed: { op: "rolling", table: "trades", window: "1m", columns: [], aggregates: [{ fn: "vwap", column: "price", weight: "size" }] } }),
      ];
      const arrivals = subs.map(() => [] as { lsn: number; at: number }[]);
      const reading = subs.map(async (s, i) => {
        for await (const u of s.updates()) arrivals[i]!.push({ lsn: maxLsn(u), at: performance.now() });
      });
      return {
        arrivals,
        /** Calls each subscriber made again (a call ended by a full buffer resumes from its offset). */
        reconnects: () => subs.map((s) => s.reconnects),
        close: async () => {
          for (const s of subs) s.close();
          await Promise.all(reading);
        },
      };
    };
    const openFanout = async () => {
      const jsm = await jetstreamManager(nc);
      const lastFeedSeq = (await jsm.streams.info(feedStream("default")).catch(() => undefined))?.state.last_seq ?? 0;
      const child = await startFanout(nats.url, SUBSCRIBERS, lastFeedSeq + 1);
      // The consumers report at the end: a consumer here tells when the feed went live for them.
      const probe: { lsn: number }[] = [];
      const c = await jetstream(nc).consumers.get(feedStream("default"), { filter_subjects: feedSubject("default", "bench_raw"), deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastFeedSeq + 1 });
      const msgs = await c.consume({ max_messages: 16 });
      void (async () => {
        for await (const m of msgs) {
          const token = m.headers?.get(HDR_FEED_OFFSET);
          if (token) probe.push({ lsn: offsetLsn(token) });
        }
      })();
      return {
        probe,
        stop: async () => {
          msgs.stop();
          void c.delete().catch(() => false);
          return child.stop();
        },
      };
    };

    /** Waits until the materialized feed published the output of every record acked so far (it may trail an unpaced run). */
    const feedCaughtUp = async (): Promise<void> => {
      const jsm = await jetstreamManager(nc);
      const walLast = (await jsm.streams.info(walStream("default"))).state.last_seq;
      const since = performance.now();
      while (performance.now() - since < 120_000) {
        const m = await jsm.streams.getMessage(feedStream("default"), { last_by_subj: feedSubject("default", "bench_raw") }).catch(() => null);
        const token = m?.header?.get(HDR_FEED_OFFSET);
        if (token && offsetLsn(token) >= walLast) return;
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    // 2a. gRPC subscriptions. A stateful one (VWAP) folds the WAL from its start before its first update: the latencies
    // are taken once every reader delivered an update of a record published after it subscribed (the live path's, not that replay's).
    const grpc = openSubs();
    const firstGrpc = await untilLive(grpc.arrivals);
    await feedCaughtUp();
    console.error(`first live update after subscribing (raw, vwap): ${firstGrpc.map((t) => (t === null ? "none in 120 s" : `${t} ms`)).join(", ")}`);
    const ackGrpc = new Map<number, number>();
    const grpcRate = await paced(pub, walk, RATE, PACED_S, ackGrpc);
    console.error(`paced ingest for the subscriptions' latencies: ${Math.round(grpcRate)} ticks/s (asked ${RATE})`);
    await new Promise((r) => setTimeout(r, 3000));
    const raw = latencyOf(grpc.arrivals[0]!, ackGrpc).sort((a, b) => a - b);
    const vwap = latencyOf(grpc.arrivals[1]!, ackGrpc).sort((a, b) => a - b);
    const grpcReconnects = grpc.reconnects();
    await grpc.close();

    // 2b. Fan-out, at RATE and at FANOUT_LOW_RATE. Every consumer should get one message per record acked in the paced
    // run (a raw feed: each record has rows for it); one not received by the end counts with the time waited so far: a
    // consumer cut off cannot hide behind the ones that read. The first live update is the first message of a record
    // published after they started.
    const measureFanout = async (rate: number) => {
      const fanout = await openFanout();
      const first = (await untilLive([fanout.probe]))[0] ?? null;
      await feedCaughtUp();
      const ack = new Map<number, number>();
      const reached = await paced(pub, walk, rate, PACED_S, ack);
      await new Promise((r) => setTimeout(r, 3000));
      const report = await fanout.stop();
      const waitedTo = performance.now();
      const arrived = report.lsn.map((lsn, i) => ({ lsn, at: report.at[i]! - performance.timeOrigin }));
      const got = new Map<number, number>();
      for (const x of arrived) if (ack.has(x.lsn)) got.set(x.lsn, (got.get(x.lsn) ?? 0) + 1);
      const missing = [...ack].flatMap(([lsn, at]) => Array.from({ length: Math.max(0, SUBSCRIBERS - (got.get(lsn) ?? 0)) }, () => waitedTo - at));
      const latencies = [...latencyOf(arrived, ack), ...missing].sort((x, y) => x - y);
      const expected = SUBSCRIBERS * ack.size;
      console.error(`fan-out at ${Math.round(reached)} ticks/s (asked ${rate}): ${expected - missing.length} of ${expected} messages delivered, p99 ${round(percentile(latencies, 99))} ms`);
      return { first, rate: reached, latencies, delivered: expected - missing.length, expected, events: report.events };
    };
    const fanHigh = SUBSCRIBERS > 0 ? await measureFanout(RATE) : undefined;
    const fanLow = SUBSCRIBERS > 0 ? await measureFanout(FANOUT_LOW_RATE) : undefined;
    let fanEvents = [...(fanHigh?.events ?? []), ...(fanLow?.events ?? [])];

    // 2c. The ingest ratio: unpaced, with the subscriptions and the consumers attached (once the VWAP one is live again).
    const again = openSubs();
    const fanAgain = SUBSCRIBERS > 0 ? await openFanout() : undefined;
    await untilLive([...again.arrivals, ...(fanAgain === undefined ? [] : [fanAgain.probe])]);
    const withFeeds = await ingest(pub, walk, TICKS, new Map());
    console.error(`ingest with 2 subscriptions and ${SUBSCRIBERS} materialized-feed consumers: ${Math.round(withFeeds)} ticks/s`);
    await again.close();
    fanEvents = [...fanEvents, ...((await fanAgain?.stop())?.events ?? [])];

    // 3. Resume: one subscriber closed every few updates and resumed from its offset, against one uninterrupted.
    const feed = { op: "range", table: "trades", columns: ["price"] };
    const steady = new FeedSubscriber({ address, token, feed });
    const steadyKeys: string[] = [];
    const steadyRead = (async () => {
      for await (const u of steady.updates()) for (const r of u.table.toArray()) steadyKeys.push(`${String(r._lsn)}:${String(r._row)}`);
    })();
    // The resumed chain starts where the steady subscriber starts: both then cover the same updates.
    while (steady.offset === undefined) await new Promise((r) => setTimeout(r, 20));
    const resumedKeys: string[] = [];
    let from = steady.offset;
    const resumeTicks = Math.min(TICKS, 200_000);
    const publishing = ingest(pub, walk, resumeTicks, new Map());
    let done = false;
    let current: FeedSubscriber | undefined;
    // Publishing over (and 2 s for the last updates): the subscriber waiting for more is closed.
    void publishing.then(() =>
      setTimeout(() => {
        done = true;
        current?.close();
      }, 2000),
    );
    while (!done) {
      const s = new FeedSubscriber({ address, token, feed, from });
      current = s;
      let k = 0;
      for await (const u of s.updates()) {
        for (const r of u.table.toArray()) resumedKeys.push(`${String(r._lsn)}:${String(r._row)}`);
        from = u.offset;
        if (++k >= 5 || done) break;
      }
      s.close();
    }
    await new Promise((r) => setTimeout(r, 1000));
    steady.close();
    await steadyRead;
    const have = new Set(resumedKeys);
    const duplicates = resumedKeys.length - have.size;
    const last = resumedKeys.at(-1);
    const upTo = last === undefined ? 0 : steadyKeys.indexOf(last) + 1;
    const firstIdx = resumedKeys.length === 0 ? 0 : steadyKeys.indexOf(resumedKeys[0]!);
    const gaps = steadyKeys.slice(Math.max(0, firstIdx), upTo).filter((k) => !have.has(k)).length;

    writeResult(
      "feeds",
      {
        feed_ingest_ticks_per_s: Math.round(Math.min(grpcRate, fanHigh?.rate ?? Infinity)),
        feed_latency_p50_ms: round(percentile(raw, 50)),
        feed_latency_p99_ms: round(percentile(raw, 99)),
        feed_vwap_latency_p50_ms: round(percentile(vwap, 50)),
        feed_vwap_latency_p99_ms: round(percentile(vwap, 99)),
        feed_subscribers: SUBSCRIBERS,
        feed_fanout_latency_p99_ms: round(percentile(fanHigh?.latencies ?? [], 99)),
        feed_resume_gaps: gaps,
        feed_resume_duplicates: duplicates,
        ingest_with_feeds_vs_without_ratio: round(withFeeds / without),
      },
      {
        setup: `trades (sym, ts, price, size), 1,000 random-walk symbols, ${BATCH}-tick batches, window ${WINDOW}, ${TICKS} ticks per run; node in its own process (standalone, gRPC), nats-server and this client on this machine; the ingest ratio is unpaced (as fast as the window allows) with and without the subscriptions and consumers; latencies are measured first, in two paced runs at ${RATE} ticks/s for ${PACED_S} s (feed_ingest_ticks_per_s is the lower rate reached), one with the raw and VWAP subscriptions over gRPC, one with the fan-out consumers (together they exceed this 2-core machine), each once every reader delivered its first live update (the VWAP subscription folds the WAL from its start first: first_live_update_ms) and the materialized feed caught up with the WAL; the fan-out again at ${FANOUT_LOW_RATE} ticks/s (fanout_at_low_rate); latency = update arrival - ack of the newest LSN it covers; fan-out = ${SUBSCRIBERS} NATS clients (JetStream ordered consumers, each on its own connection, in a process of their own) of the materialized feed bench_raw, every message of the paced run counted (one a consumer did not get counts with the time waited for it)`,
        samples: { raw: raw.length, vwap: vwap.length, fanout: fanHigh?.latencies.length ?? 0, resumed_rows: resumedKeys.length },
        runs: {
          // Of the paced run's messages, what the consumers got (the rest count in the p99 with the time waited for them).
          fanout_delivered: fanHigh?.delivered ?? 0,
          fanout_expected: fanHigh?.expected ?? 0,
          // The same consumers at a rate this machine carries beside them (~1/5 of the bytes): the fan-out path's own latency.
          fanout_at_low_rate:
            fanLow === undefined
              ? null
              : { ticks_per_s: Math.round(fanLow.rate), p50_ms: round(percentile(fanLow.latencies, 50)), p99_ms: round(percentile(fanLow.latencies, 99)), delivered: fanLow.delivered, expected: fanLow.expected },
          // Disconnects of the consumers' connections and of this client's (nats-server cuts slow consumers off).
          fanout_connection_events: fanEvents.length,
          client_connection_events: clientEvents.length,
          ingest_without_feeds_ticks_per_s: Math.round(without),
          ingest_with_feeds_unpaced_ticks_per_s: Math.round(withFeeds),
          paced_rate_asked: RATE,
          paced_seconds: PACED_S,
          // From subscribing to the first update of a record published after it: the VWAP one folds the whole WAL first.
          // From subscribing to the end of the paced run: how often the raw and the VWAP subscriber had to subscribe again.
          subscription_resumes: { raw: grpcReconnects[0] ?? 0, vwap: grpcReconnects[1] ?? 0 },
          first_live_update_ms: { raw: firstGrpc[0] ?? null, vwap: firstGrpc[1] ?? null, fanout: fanHigh?.first ?? null },
          paced_ticks_per_s: { subscriptions: Math.round(grpcRate), fanout: Math.round(fanHigh?.rate ?? 0) },
          // What the operators cost alone (foldCost): the VWAP feed's share of a node's CPU beside the raw feed's.
          operator_fold: fold,
        },
        load_avg_1m: { before: loadBefore, after: round(loadavg()[0]!, 2) },
      },
    );
  } finally {
    await node.kill("SIGTERM");
    await nc.close();
    await nats.dispose();
  }
}

if (process.argv[2] === "--fanout") await fanoutChild(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
else await main();
