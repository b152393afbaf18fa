// Stream setup of a node: each tenant's WAL and watermark streams exist before
// the node serves the tenant's tables (the catalog's `prepare` step). Streams
// are created once per tenant and process; creation is retried on `Schedule`.
import type { JetStreamManager } from "@nats-io/jetstream";
import { Duration, Effect, Schedule } from "effect";
import type { Catalog } from "../catalog.js";
import { StreamRoomError, ensureWalStream, ensureWatermarkStream } from "../wal/index.js";
import { TaggedError } from "../../protocols/tagged.js";
import { walGapOf } from "./shard/host.js";
import type { LocalShardHost } from "./shard/host.js";
import { storeLimits } from "../config/limits.js";

/** A tenant's WAL or watermark stream could not be created after every attempt. */
export class TenantStreamsError extends TaggedError("TenantStreamsError") {}

export interface TenantStreamsOptions {
  readonly replicas: number;
  readonly nodeId: string;
  /** Byte limit of each tenant's WAL stream (discard new); -1 = none. */
  readonly walMaxBytes?: number;
  readonly log: (line: string) => void;
  /** Attempts per tenant before failing the catalog's prepare step (the catalog retries it with backoff). */
  readonly attempts?: number;
  readonly baseDelayMs?: number;
}

/** Returns the prepare step: creates the streams of every tenant in the catalog not seen before. */
export function tenantStreams(jsm: JetStreamManager, o: TenantStreamsOptions): (catalog: Catalog) => Promise<void> {
  const ensured = new Set<string>();
  // A NATS cluster still electing stream leaders answers with timeouts for a while: retry before giving up.
  const schedule = Schedule.exponential(Duration.millis(o.baseDelayMs ?? 500), 1.5);
  const ensure = (tenant: string) =>
    Effect.tryPromise(async () => {
      const note = await ensureWalStream(jsm, tenant, { replicas: o.replicas, maxBytes: o.walMaxBytes ?? storeLimits().walMaxBytes });
      if (note !== undefined) o.log(`node ${o.nodeId}: ${note}`);
      await ensureWatermarkStream(jsm, tenant, o.replicas);
    }).pipe(
      Effect.tapError((e) => Effect.sync(() => log(o, tenant, e))),
      Effect.retry({ schedule, times: (o.attempts ?? 5) - 1 }),
    );
  return async (catalog) => {
    for (const tenant of catalog.keys()) {
      if (ensured.has(tenant)) continue;
      await Effect.runPromise(ensure(tenant)).catch((e: unknown) => {
        throw new TenantStreamsError(`node ${o.nodeId}: cannot create the streams of tenant ${tenant}: ${causeMessage(e)}${innerCause(e) instanceof StreamRoomError ? "" : "; check that JetStream is enabled and reachable"}`, { cause: e });
      });
      ensured.add(tenant);
    }
  };
}

/** /readyz before the first catalog is served: still creating the tenants' streams, or why that keeps failing. */
export function catalogNotLoaded(prepareProblem: string | undefined): string {
  return prepareProblem === undefined
    ? "catalog: px_config not loaded yet (its tenants' streams are being created)"
    : `catalog: px_config not loaded yet: ${prepareProblem}; retrying`;
}

/** What /readyz names: a full WAL (the gateway refuses ingest) and every shard stopped on a WAL gap. */
export function nodeProblems(walFull: string | undefined, shards: LocalShardHost): string[] {
  const out: string[] = [];
  if (walFull !== undefined) out.push(`WAL full: ${walFull}; ingest is refused (RESOURCE_EXHAUSTED) until compaction frees space`);
  for (const h of shards.all()) {
    const gap = walGapOf(h);
    if (gap !== undefined) out.push(gap);
  }
  return out;
}

/** The error inside effect's wrapper (tryPromise's UnknownError), or `e` itself. */
const innerCause = (e: unknown): unknown => {
  const inner = (e as { cause?: unknown }).cause;
  return inner instanceof Error ? inner : e;
};
const causeMessage = (e: unknown): string => (innerCause(e) as Error).message;

function log(o: TenantStreamsOptions, tenant: string, e: unknown): void {
  o.log(`node ${o.nodeId}: creating the streams of tenant ${tenant} failed (${causeMessage(e)}); retrying`);
}
