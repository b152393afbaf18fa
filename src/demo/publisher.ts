// Demo publisher: streams random-walk trades and quotes into the default tenant
// through the TypeScript client, at a target rate, until stopped.
import type { NatsConnection } from "@nats-io/transport-node";
import { TickPublisher } from "../client/publisher.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { RandomWalk, demoSymbols } from "./randomwalk.js";

export interface DemoOptions {
  readonly tenant: string;
  readonly trades: TableSpec;
  readonly quotes: TableSpec;
  readonly ticksPerSecond: number;
  readonly symbols: number;
  readonly log: (line: string) => void;
}

export interface DemoPublisher {
  /** Resolves once the first trade and quote of every symbol are acknowledged (rejects if they are refused). */
  readonly seeded: Promise<void>;
  stop(): Promise<void>;
}

export function startDemoPublisher(nc: NatsConnection, o: DemoOptions): DemoPublisher {
  const walk = new RandomWalk(demoSymbols(o.symbols), 42);
  const trades = new TickPublisher(nc, { tenant: o.tenant, spec: o.trades, maxInFlight: 8 });
  const quotes = new TickPublisher(nc, { tenant: o.tenant, spec: o.quotes, maxInFlight: 8 });
  // One trade and one quote per symbol first, so every symbol answers a last-by from the start.
  const seedStart = walk.tsMicros;
  const seedQuotes = walk.quotes(o.symbols, 1000, true);
  walk.tsMicros = seedStart;
  const seeded = Promise.all([quotes.publish(seedQuotes), trades.publish(walk.trades(o.symbols, 1000, true))]).then(() => {});
  seeded.catch((e: unknown) => o.log(`demo: the first tick of each symbol was refused: ${(e as Error).message}`));
  const periodMs = 100;
  // Per period, a quarter of the ticks are trades and the rest quotes, as on a real feed.
  const perPeriod = Math.max(2, Math.round((o.ticksPerSecond * periodMs) / 1000));
  let sent = 0;
  let failures = 0;
  let running = true;
  const timer = setInterval(() => {
    if (!running) return;
    // Ticks carry the wall-clock time: a late timer (a loaded machine) must not leave the feed behind "now".
    const start = Math.max(walk.tsMicros, Date.now() * 1000 - periodMs * 1000);
    walk.tsMicros = start;
    const q = walk.quotes(Math.ceil(perPeriod * 0.75), periodMs * 1000);
    walk.tsMicros = start;
    const t = walk.trades(Math.max(1, Math.floor(perPeriod * 0.25)), periodMs * 1000);
    for (const [p, b] of [[quotes, q], [trades, t]] as const) {
      p.publish(b).then(
        (ack) => (sent += ack.rows),
        (e: unknown) => {
          if (failures++ % 50 === 0) o.log(`demo: publish failed: ${(e as Error).message}`);
        },
      );
    }
  }, periodMs);
  const report = setInterval(() => o.log(`demo: ${sent} ticks acknowledged so far`), 10_000);
  return {
    seeded,
    stop: async () => {
      running = false;
      clearInterval(timer);
      clearInterval(report);
      await Promise.allSettled([trades.flush(), quotes.flush()]);
    },
  };
}
