// The node's one catalog: the tenant specs of px_config, watched by one KV
// watcher and shared by the gateway, shards, sinks, control plane and API.
// Loaded once the watcher reports the end of its initial values; when the
// watcher breaks it is re-opened with backoff (effect `Schedule`) and the node
// keeps serving the last catalog meanwhile. stop() ends the watch.
import type { NatsConnection } from "@nats-io/transport-node";
import { Duration, Effect, Fiber, Schedule } from "effect";
import { KV_CONFIG } from "../../protocols/subjects.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { TenantSpec } from "../../protocols/tablespec.js";
import { catalogOf } from "../catalog.js";
import type { Catalog } from "../catalog.js";
import { jsonValue } from "./kv.js";
import type { ControlKv, KvChange, KvWatchError } from "./kv.js";
import { openConfigBucket } from "./metadata.js";
import { natsControlKv } from "./natskv.js";
import { TaggedError } from "../../protocols/tagged.js";

const TENANT_PREFIX = "tenant.";

/** Anything that calls back with the full catalog now and on every change (the node catalog below does). */
export interface CatalogSource {
  watch(onCatalog: (catalog: Catalog) => void): Promise<() => void>;
}

/** The watch of px_config failed (could not open, or broke); the catalog source re-opens it. */
export class CatalogWatchError extends TaggedError("CatalogWatchError") {}

export interface NodeCatalog extends CatalogSource {
  /** The catalog served now (empty until loaded). */
  current(): Catalog;
  /** True once the initial values of px_config were all seen (and prepared). */
  loaded(): boolean;
  /** Resolves with the first loaded catalog. */
  whenLoaded(): Promise<Catalog>;
  /** Why the newest catalog is not served yet: its prepare step's last failure (undefined once it succeeds). */
  prepareProblem(): string | undefined;
  /** Calls `onCatalog` now if loaded, then on every change, until the returned function is called. */
  subscribe(onCatalog: (catalog: Catalog) => void): () => void;
  stop(): Promise<void>;
}

export interface CatalogOptions {
  /**
   * Runs before a catalog is served (the node creates the tenants' streams here);
   * a failure keeps the previous catalog, is logged and is retried (same catalog, unless
   * a newer one arrived) after a backoff. Catalogs are prepared in order.
   */
  readonly prepare?: (catalog: Catalog) => Promise<void>;
  /** First delay before preparing a failed catalog again (doubling, capped at prepareRetryMaxMs); default 500 ms / 5 s. */
  readonly prepareRetryBaseMs?: number;
  readonly prepareRetryMaxMs?: number;
  /** Delays between attempts to (re)open a broken watch; default: 100 ms doubling up to 5 s, jittered. */
  readonly retry?: Schedule.Schedule<unknown>;
  readonly log?: (line: string) => void;
}

export const catalogRetry = (baseMs = 100, maxMs = 5_000): Schedule.Schedule<Duration.Duration> =>
  Schedule.exponential(Duration.millis(baseMs), 2).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, Duration.millis(maxMs)))),
    Schedule.jittered,
  );

/** A tenant spec change applied to the specs map; false when the value cannot be read (the previous spec stays). */
function applyChange(tenants: Map<string, TenantSpec>, c: KvChange): boolean {
  if (!c.key.startsWith(TENANT_PREFIX)) return false;
  const name = c.key.slice(TENANT_PREFIX.length);
  if (c.value === undefined) return tenants.delete(name);
  try {
    tenants.set(name, parseTenantSpec(jsonValue.decode(c.value)));
    return true;
  } catch {
    return false; // a spec this version cannot read: keep serving the previous one
  }
}

interface OpenWatch {
  stop(): void;
  /** Resolves when the watcher breaks after its initial load. */
  readonly broken: Promise<KvWatchError>;
}

/** Watches px_config (through `kv`) into one shared catalog. */
export function watchCatalog(kv: ControlKv, o: CatalogOptions = {}): NodeCatalog {
  const log = o.log ?? (() => {});
  let current: Catalog = new Map();
  let loaded = false;
  const subscribers = new Set<(c: Catalog) => void>();
  let markLoaded!: (c: Catalog) => void;
  const firstLoad = new Promise<Catalog>((resolve) => (markLoaded = resolve));

  // Preparing is asynchronous: chain it so catalogs are served in the order they were seen.
  let serving: Promise<void> = Promise.resolve();
  let latest: Catalog | undefined;
  let stopped = false;
  let retryTimer: ReturnType<typeof setTimeout> | undefined;
  let failures = 0;
  let prepareProblem: string | undefined;
  const serve = (catalog: Catalog): void => {
    latest = catalog;
    serving = serving
      .then(() => o.prepare?.(catalog))
      .then(
        () => {
          failures = 0;
          prepareProblem = undefined;
          current = catalog;
          if (!loaded) {
            loaded = true;
            markLoaded(catalog);
          }
          for (const s of subscribers) s(catalog);
        },
        (e: unknown) => {
          // Retry the same catalog: waiting for the next px_config change would leave a
          // node whose first prepare failed (a JetStream timeout) unready for good.
          const delayMs = Math.min(o.prepareRetryMaxMs ?? 5_000, (o.prepareRetryBaseMs ?? 500) * 2 ** failures++);
          prepareProblem = (e as Error).message;
          log(`catalog: cannot serve the new px_config catalog (${(e as Error).message}); keeping the previous one, retrying in ${delayMs} ms`);
          if (stopped) return;
          clearTimeout(retryTimer);
          retryTimer = setTimeout(() => {
            if (!stopped && latest === catalog) serve(catalog);
          }, delayMs);
        },
      );
  };

  // One watch: succeeds once its initial values are all seen, fails if it breaks before.
  const openWatch = Effect.callback<OpenWatch, CatalogWatchError>((resume) => {
    const tenants = new Map<string, TenantSpec>();
    let synced = false;
    let closed = false;
    let stop: (() => void) | undefined;
    let onBreak!: (e: KvWatchError) => void;
    const broken = new Promise<KvWatchError>((resolve) => (onBreak = resolve));
    const close = (): void => {
      closed = true;
      stop?.();
    };
    const fail = (e: unknown): void => {
      if (closed) return;
      close();
      if (synced) onBreak(e as KvWatchError);
      else resume(Effect.fail(new CatalogWatchError(`px_config: watching the tenant specs failed: ${(e as Error).message}`, { cause: e })));
    };
    kv.watch(
      (c) => {
        if (applyChange(tenants, c) && synced) serve(catalogOf(tenants.values()));
      },
      () => {
        synced = true;
        serve(catalogOf(tenants.values()));
        resume(Effect.succeed({ stop: close, broken }));
      },
      fail,
    ).then((s) => (closed ? s() : (stop = s)), fail);
    return Effect.sync(close);
  });

  const schedule = o.retry ?? catalogRetry();
  // Each round: open (retrying with backoff) until loaded, then wait for the watch to break.
  const round = Effect.gen(function* () {
    const watch = yield* openWatch.pipe(
      Effect.tapError((e) => Effect.sync(() => log(`catalog: ${e.message}; retrying`))),
      Effect.retry(schedule),
    );
    const e = yield* Effect.promise(() => watch.broken).pipe(Effect.onInterrupt(() => Effect.sync(watch.stop)));
    log(`catalog: ${e.message}; resyncing`);
  });
  const fiber = Effect.runFork(Effect.forever(round));

  const subscribe = (onCatalog: (c: Catalog) => void): (() => void) => {
    subscribers.add(onCatalog);
    if (loaded) onCatalog(current);
    return () => subscribers.delete(onCatalog);
  };
  return {
    current: () => current,
    loaded: () => loaded,
    whenLoaded: () => firstLoad,
    prepareProblem: () => prepareProblem,
    subscribe,
    watch: async (onCatalog) => subscribe(onCatalog),
    stop: async () => {
      stopped = true;
      clearTimeout(retryTimer);
      subscribers.clear();
      await Effect.runPromise(Fiber.interrupt(fiber));
    },
  };
}

/** Opens px_config the way MetadataStore does (same bucket settings) and watches it. */
export async function openCatalog(nc: NatsConnection, replicas = 1, o: CatalogOptions = {}): Promise<NodeCatalog> {
  return watchCatalog(natsControlKv(nc, await openConfigBucket(nc, replicas), KV_CONFIG), o);
}

/**
 * The controller's catalog when it runs without a node (run-controller.ts, tests):
 * each watch opens its own px_config watcher and stopping the watch ends it.
 */
export async function openCatalogSource(nc: NatsConnection, replicas = 1): Promise<CatalogSource> {
  const kv = natsControlKv(nc, await openConfigBucket(nc, replicas), KV_CONFIG);
  return {
    watch: async (onCatalog) => {
      const catalog = watchCatalog(kv);
      const unsubscribe = catalog.subscribe(onCatalog);
      return () => {
        unsubscribe();
        void catalog.stop();
      };
    },
  };
}
