// Query quotas of each tenant: how many queries run at once (a counter per
// tenant on this node, and the other nodes' counts as they last reported, so
// the quota holds cluster-wide: cluster.ts queryShare), and per query a budget
// of memory (rows loaded and rows of the result) and of result rows. Pure
// bookkeeping: the query engine asks before it holds more, and a query over a
// budget stops with QueryError RESOURCE_EXHAUSTED naming the quota, so the node
// never builds what it would refuse to send.
import { QueryError } from "../../protocols/errors.js";
import type { TenantQuotas } from "../../protocols/tablespec.js";
import { fullBucket, take } from "./bucket.js";
import type { Bucket } from "./bucket.js";
import { queryShare, udfShare } from "./cluster.js";
import { quotaMessage } from "./refusal.js";
import type { PeerUsage } from "./share.js";

/** What the other nodes run of a tenant's queries, and how many nodes (with this one) share the quota. */
export type PeerQueries = Pick<PeerUsage, "queries" | "gateways"> & { readonly udf?: number };

/** One running query's budget; `release()` once it ended (however it ended). */
export interface QueryBudget {
  /** Adds `bytes` the query now holds (`what` says of what, for the error); throws over queryMemoryBytes. */
  hold(bytes: number, what: string): void;
  /** Checks the result's row count; throws over resultRows. */
  resultRows(rows: number): void;
  /** Bytes held so far (a refused hold is not counted). */
  readonly heldBytes: number;
  /** Bytes the query may still hold (Infinity without a memory quota). */
  readonly leftBytes: number;
  release(): void;
}

export class QueryQuotas {
  private readonly running = new Map<string, number>();
  private peers: ReadonlyMap<string, PeerQueries> = new Map();
  /** udfQueriesPerSecond: a token bucket per tenant, and the UDF queries admitted here since start (reported to the peers). */
  private readonly udfBuckets = new Map<string, Bucket>();
  private readonly udfAdmitted = new Map<string, number>();

  constructor(
    private readonly quotasOf: (tenant: string) => TenantQuotas,
    private readonly nowMs: () => number = Date.now,
  ) {}

  /** Queries calling user-defined functions this node admitted for `tenant` since it started. */
  udfAdmittedOf(tenant: string): number {
    return this.udfAdmitted.get(tenant) ?? 0;
  }

  /**
   * Admits one query of `tenant` that calls user-defined functions, or throws
   * RESOURCE_EXHAUSTED naming udfQueriesPerSecond. The rate holds across the
   * cluster: this node grants what its peers leave (udfShare).
   */
  admitUdf(tenant: string): void {
    const quota = this.quotasOf(tenant).udfQueriesPerSecond;
    if (quota === undefined) return;
    const p = this.peers.get(tenant);
    const rate = udfShare(quota, p === undefined ? undefined : { udf: p.udf ?? 0, gateways: p.gateways });
    const now = this.nowMs();
    const r = { perSecond: rate, capacity: rate };
    const t = take(this.udfBuckets.get(tenant) ?? fullBucket(r, now), r, 1, now);
    this.udfBuckets.set(tenant, t.bucket);
    if (!t.ok) {
      const share = p === undefined || p.gateways <= 1 ? "" : ` across the cluster (this node's share now is ${Math.round(rate * 10) / 10}/s: what the other ${p.gateways - 1} node(s) leave, at least an even share)`;
      throw new QueryError("RESOURCE_EXHAUSTED", quotaMessage(tenant, "udfQueriesPerSecond", quota, `is reached${share} (queries calling user-defined functions)`, `retry in ${t.waitMs} ms`));
    }
    this.udfAdmitted.set(tenant, this.udfAdmittedOf(tenant) + 1);
  }

  /** Queries of `tenant` running now. */
  runningOf(tenant: string): number {
    return this.running.get(tenant) ?? 0;
  }

  /** The other nodes' running queries per tenant, as last reported (a tenant not named: none). */
  setPeers(peers: ReadonlyMap<string, PeerQueries>): void {
    this.peers = peers;
  }

  /** Admits one query of `tenant` (coordinated here) or throws RESOURCE_EXHAUSTED naming concurrentQueries. */
  begin(tenant: string): QueryBudget {
    const q = this.quotasOf(tenant);
    const n = this.runningOf(tenant);
    if (q.concurrentQueries !== undefined) {
      const p = this.peers.get(tenant);
      const may = queryShare(q.concurrentQueries, p);
      if (n >= may) {
        const others = p?.queries ?? 0;
        const share = p === undefined || p.gateways <= 1 ? "" : `; this node's share now is ${may} (what the other ${p.gateways - 1} node(s) leave, at least an even share)`;
        throw new QueryError(
          "RESOURCE_EXHAUSTED",
          quotaMessage(tenant, "concurrentQueries", q.concurrentQueries, `is reached across the cluster (${n + others} queries of the tenant run now: ${n} on this node, ${others} on other nodes as they last reported${share}); this query needs one more`, "retry when one of them ended"),
        );
      }
    }
    this.running.set(tenant, n + 1);
    let released = false;
    let held = 0;
    return {
      get heldBytes() {
        return held;
      },
      get leftBytes() {
        return q.queryMemoryBytes === undefined ? Infinity : Math.max(0, q.queryMemoryBytes - held);
      },
      hold(bytes, what) {
        const max = q.queryMemoryBytes;
        if (max !== undefined && held + bytes > max) {
          throw new QueryError(
            "RESOURCE_EXHAUSTED",
            quotaMessage(tenant, "queryMemoryBytes", max, `would be passed: the query holds ${held} bytes and ${what} needs ${bytes} more; it was stopped before building its result`, "narrow it (a shorter time range, fewer symbols, a limit, or an aggregate such as bars)"),
          );
        }
        held += bytes;
      },
      resultRows(rows) {
        const max = q.resultRows;
        if (max !== undefined && rows > max) {
          throw new QueryError("RESOURCE_EXHAUSTED", quotaMessage(tenant, "resultRows", max, `would be passed: the result has ${rows} rows`, "narrow the query or give it a limit of at most that many rows"));
        }
      },
      release: () => {
        if (released) return;
        released = true;
        const left = this.runningOf(tenant) - 1;
        if (left <= 0) this.running.delete(tenant);
        else this.running.set(tenant, left);
      },
    };
  }
}
