// The slow-query log of a node: queries at or over their tenant's threshold are
// buffered and written to ClickHouse px_system.query_log in small batches (one
// INSERT a second at most), so a burst of slow queries costs one round trip.
// A write that fails is logged and dropped: the log must never slow queries.
import type { ClickhouseHttp, QueryLogRow } from "../clickhouse/index.js";
import { ensureQueryLog, insertQueryLog } from "../clickhouse/index.js";

export interface SlowQueryOptions {
  /** Threshold of tenants without their own (default 1000 ms; PX_SLOW_QUERY_MS). */
  readonly defaultMs?: number;
  /** Per-tenant thresholds (PX_SLOW_QUERY_MS_TENANTS="alpha=0,beta=250"). */
  readonly perTenantMs?: Readonly<Record<string, number>>;
  readonly flushMs?: number;
}

/** Reads PX_SLOW_QUERY_MS and PX_SLOW_QUERY_MS_TENANTS; names a malformed value. */
export function slowQueryOptionsFromEnv(env: Readonly<Record<string, string | undefined>>): SlowQueryOptions {
  const num = (v: string, what: string): number => {
    const n = Number(v);
    if (v.trim() === "" || !Number.isFinite(n) || n < 0) throw new Error(`${what} must be a number of milliseconds >= 0, got "${v}"`);
    return n;
  };
  const perTenantMs: Record<string, number> = {};
  for (const pair of (env.PX_SLOW_QUERY_MS_TENANTS ?? "").split(",").filter((p) => p.trim() !== "")) {
    const [tenant, ms] = pair.split("=");
    if (tenant === undefined || ms === undefined || tenant.trim() === "") throw new Error(`PX_SLOW_QUERY_MS_TENANTS: "${pair}" is not tenant=ms (e.g. alpha=0,beta=250)`);
    perTenantMs[tenant.trim()] = num(ms, `PX_SLOW_QUERY_MS_TENANTS ${tenant.trim()}`);
  }
  return { ...(env.PX_SLOW_QUERY_MS === undefined ? {} : { defaultMs: num(env.PX_SLOW_QUERY_MS, "PX_SLOW_QUERY_MS") }), perTenantMs };
}

export class SlowQueries {
  private buffer: QueryLogRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private ready: Promise<void> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ch: ClickhouseHttp,
    private readonly node: string,
    private readonly o: SlowQueryOptions,
    private readonly log: (line: string) => void,
  ) {}

  thresholdMs(tenant: string): number {
    return this.o.perTenantMs?.[tenant] ?? this.o.defaultMs ?? 1000;
  }

  record(row: Omit<QueryLogRow, "node">): void {
    this.buffer.push({ ...row, node: this.node });
    this.timer ??= setTimeout(() => void this.flush(), this.o.flushMs ?? 1000);
  }

  /** Writes what is buffered now (tests, and stop). */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const rows = this.buffer;
    this.buffer = [];
    this.writing = this.writing.then(async () => {
      if (rows.length === 0) return;
      try {
        this.ready ??= ensureQueryLog(this.ch);
        await this.ready;
        await insertQueryLog(this.ch, rows);
      } catch (e) {
        this.ready = undefined;
        this.log(`slow-query log: cannot write ${rows.length} rows to px_system.query_log (${(e as Error).message}); they are dropped`);
      }
    });
    return this.writing;
  }
}
