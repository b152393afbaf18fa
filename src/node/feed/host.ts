// The materialized feeds this node runs: those of px_config (FeedSpec in a
// tenant spec, applied with `pxctl apply`) that `runsHere` gives this node. A
// standalone node (--shards all) runs every feed; in a cluster a feed runs
// where the controller placed shard 0 of its table (node.ts), so it is placed,
// moved on failover and drained with that shard. Reconciled on each catalog
// change and each change of the hosted shards: new feeds start, removed ones
// (their checkpoints removed too) and those whose shard left stop, a changed
// definition restarts under the new fingerprint.
import type { NatsConnection } from "@nats-io/transport-node";
import type { TenantSpec } from "../../../protocols/tablespec.js";
import type { Catalog } from "../../catalog.js";
import { feedTables, planFeed } from "../../feed/index.js";
import type { FeedPlan } from "../../feed/index.js";
import { startFeed } from "./runtime.js";
import type { FeedHistory, FeedRuntime } from "./runtime.js";

export interface FeedHostOptions {
  readonly nc: NatsConnection;
  /** The tenant specs of px_config (feeds are not in the catalog, which holds tables). */
  readonly tenants: () => Promise<ReadonlyMap<string, { readonly spec: TenantSpec }>>;
  readonly catalog: () => Catalog;
  readonly replicas: number;
  readonly log: (line: string) => void;
  /** H of a shard this node hosts. */
  readonly horizon?: (tenant: string, table: string, bucket: number) => number | undefined;
  /** Whether this node runs the feed (default: every feed). */
  readonly runsHere?: (plan: FeedPlan) => boolean;
  /** Why a feed that `runsHere` refuses is not run here, for the log. */
  readonly elsewhere?: (plan: FeedPlan) => string;
  /** Compacted WAL records read back from ClickHouse (a node with ClickHouse). */
  readonly history?: FeedHistory;
  /** Removes the checkpoints of every feed but these (checkpoints.ts sweepFeedCheckpoints); returns the names removed. */
  readonly sweep?: (feeds: readonly { tenant: string; name: string }[]) => Promise<string[]>;
}

export interface FeedHost {
  /** Feeds running here, "tenant/name" -> runtime. */
  readonly running: ReadonlyMap<string, FeedRuntime>;
  /** Lowest WAL LSN each feed here still needs of `table` (WAL compaction purges nothing from it on). */
  holds(tenant: string, table: string): number[];
  reconcile(): Promise<void>;
  stop(): void;
}

/** Checkpoint interval of a feed that does not set checkpointSeconds. */
export const DEFAULT_CHECKPOINT_SECONDS = 60;

/** What a feed holds of the WAL: the state it is in, the last LSN it folded and the LSN its checkpoint covers. */
export interface FeedPosition {
  readonly plan: FeedPlan;
  readonly failed: boolean;
  readonly foldedLsn: number;
  /** Whether the feed saves checkpoints (a restart then folds the WAL from the last one). */
  readonly checkpointing: boolean;
  readonly checkpointLsn: number;
}

/**
 * The holds of feeds on `tenant`'s `table`: a feed that checkpoints needs
 * every record after its last checkpoint (what a restart folds on from); one
 * that does not, every record after the last it folded (a restart after
 * compaction then reads the compacted records back from ClickHouse, or fails
 * by name on a node without it). A feed still recovering has neither, so it
 * holds everything. A failed feed holds nothing: it reads no more, and when it
 * is redefined it checks the WAL's floor and fails by name if records are gone.
 */
export function feedHolds(feeds: Iterable<FeedPosition>, tenant: string, table: string): number[] {
  const out: number[] = [];
  for (const f of feeds) {
    if (f.failed || f.plan.tenant !== tenant || !feedTables(f.plan).some((t) => t.name === table)) continue;
    out.push((f.checkpointing ? f.checkpointLsn : f.foldedLsn) + 1);
  }
  return out;
}

export function feedHost(o: FeedHostOptions): FeedHost {
  const running = new Map<string, { runtime: FeedRuntime; fingerprint: string; plan: FeedPlan }>();
  let chain: Promise<void> = Promise.resolve();
  let queued = false;
  let stopped = false;
  let swept = false;
  const reconcileOnce = async (): Promise<void> => {
    const tenants = await o.tenants();
    // Stopped meanwhile (the node shuts down): nothing more starts.
    if (stopped) return;
    // Once per node start: a feed removed from the spec while no node ran it (its node down) left its checkpoints behind.
    // Not on an empty spec (none applied yet), which would take every feed's.
    if (!swept && o.sweep !== undefined && tenants.size > 0) {
      swept = true;
      const feeds = [...tenants].flatMap(([tenant, { spec }]) => (spec.feeds ?? []).map((f) => ({ tenant, name: f.name })));
      void o.sweep(feeds).then(
        (gone) => gone.length > 0 && o.log(`feeds: removed ${gone.length} checkpoint(s) of feeds no longer in the spec from px_snapshots: ${gone.join(", ")}`),
        (e: unknown) => o.log(`feeds: could not sweep the checkpoints of removed feeds from px_snapshots (${(e as Error).message}); the next node start tries again`),
      );
    }
    const catalog = o.catalog();
    const want = new Set<string>();
    for (const [tenant, { spec }] of tenants) {
      const tables = catalog.get(tenant);
      for (const f of spec.feeds ?? []) {
        const key = `${tenant}/${f.name}`;
        let plan;
        try {
          plan = planFeed(tenant, f.lateness === undefined ? { query: f.query } : { query: f.query, lateness: f.lateness }, (t) => tables?.get(t), () => [...(tables?.keys() ?? [])]);
        } catch (e) {
          o.log(`feed ${key}: not started: ${(e as Error).message}`);
          // A definition that no longer plans leaves a running one as it is.
          if (running.has(key)) want.add(key);
          continue;
        }
        if (o.runsHere !== undefined && !o.runsHere(plan)) continue;
        want.add(key);
        const cur = running.get(key);
        if (cur !== undefined && cur.fingerprint === plan.fingerprint) continue;
        cur?.runtime.stop();
        const checkpointIntervalMs = (f.checkpointSeconds ?? DEFAULT_CHECKPOINT_SECONDS) * 1000;
        const runtime = await startFeed({ nc: o.nc, name: f.name, plan, snapshotIntervalMs: (f.snapshotSeconds ?? 0) * 1000, checkpointIntervalMs, replicas: o.replicas, ...(o.horizon === undefined ? {} : { horizon: o.horizon }), ...(o.history === undefined ? {} : { history: o.history }) });
        if (stopped) {
          runtime.stop();
          return;
        }
        // What was logged already (this runs on every event of the feed: nothing is allocated here).
        let toldRestored = false;
        let toldError: string | undefined;
        runtime.actor.subscribe((s) => {
          if (s.matches("failed")) o.log(`feed ${key}: failed: ${s.context.error ?? "unknown"}`);
          const { restoredFrom, checkpointError } = s.context.stats;
          if (!toldRestored && restoredFrom !== undefined) {
            toldRestored = true;
            o.log(`feed ${key}: recovered from ${restoredFrom}`);
          }
          // Each new checkpoint problem once (a store that stays full would say the same every interval).
          if (checkpointError !== toldError) {
            if (checkpointError !== undefined) o.log(`feed ${key}: ${checkpointError} (the feed goes on; it holds the WAL from its last checkpoint)`);
            toldError = checkpointError;
          }
        });
        running.set(key, { runtime, fingerprint: plan.fingerprint, plan });
        o.log(`feed ${key}: started (${plan.kind} on ${plan.left.name})`);
      }
    }
    for (const [key, r] of running) {
      if (want.has(key)) continue;
      r.runtime.stop();
      running.delete(key);
      const gone = !(tenants.get(r.plan.tenant)?.spec.feeds ?? []).some((f) => `${r.plan.tenant}/${f.name}` === key);
      o.log(`feed ${key}: stopped (${gone ? "removed from the spec" : (o.elsewhere?.(r.plan) ?? "not run on this node any more")})`);
      // A removed feed's checkpoints would hold room in px_snapshots (shared with shard snapshots) for good.
      if (gone) {
        void r.runtime.dropCheckpoints().then(
          (n) => o.log(`feed ${key}: removed its ${n} checkpoint(s) from px_snapshots`),
          (e: unknown) => o.log(`feed ${key}: could not remove its checkpoints from px_snapshots (${(e as Error).message}); they stay until a node starts or a feed of that name saves one`),
        );
      }
    }
  };
  const host: FeedHost = {
    get running() {
      return new Map([...running].map(([k, v]) => [k, v.runtime]));
    },
    holds: (tenant, table) =>
      feedHolds(
        [...running.values()].map(({ runtime, plan }) => {
          const snap = runtime.actor.getSnapshot();
          return { plan, failed: snap.matches("failed"), foldedLsn: snap.context.stats.foldedLsn, checkpointing: snap.context.checkpointIntervalMs > 0, checkpointLsn: snap.context.stats.checkpointLsn };
        }),
        tenant,
        table,
      ),
    // One pass queued at most: a burst of shard starts asks many times, one pass after the last sees them all.
    reconcile: () => {
      if (queued || stopped) return chain;
      queued = true;
      chain = chain
        .then(() => {
          queued = false;
          return reconcileOnce();
        })
        .catch((e: unknown) => {
          // A pass cut short by the node's shutdown (its NATS connection draining) is not a failure.
          if (stopped) return;
          // A feed that could not start (JetStream busy, a timeout) is tried again, not left off until the next change.
          o.log(`feeds: cannot reconcile (trying again in 1 s): ${(e as Error).message}`);
          setTimeout(() => void host.reconcile(), 1_000).unref();
        });
      return chain;
    },
    stop: () => {
      stopped = true;
      for (const r of running.values()) r.runtime.stop();
      running.clear();
    },
  };
  return host;
}
