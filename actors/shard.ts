// Shard actor: owns one shard's hot set. recovering (load the newest valid
// snapshot) -> replaying (ordered WAL consumer from the snapshot's LSN + 1)
// -> live, with snapshotting on a schedule or on demand, draining on request
// and failed when the WAL holds a record it cannot apply or lost records it
// needs. A WAL consumer that breaks otherwise (a timeout while NATS elects a
// stream leader, a server restart) is retried after a backoff (walRetry), from
// the record after the last one applied. While running it
// follows the sink's watermarks and evicts what ClickHouse holds and the
// table's hot retention lets go. IO is injected: `loadSnapshot`, `wal`,
// `watermarks` and `writeSnapshot` come from the runtime or from fakes.
import { assign, fromCallback, fromPromise, setup } from "xstate";
import type { ShardAddress } from "../protocols/subjects.js";
import type { TableSpec } from "../protocols/tablespec.js";
import { HotTable } from "../src/hotset/index.js";
import { WalApplyError, applyWalRecord } from "../src/shard/apply.js";
import type { WalEntry } from "../src/shard/apply.js";
import { evictForRetention } from "../src/shard/evict.js";
import type { HotRetention } from "../src/shard/evict.js";
import { UnpersistedLsns } from "../src/shard/lag.js";

export interface ShardStats {
  appliedLsn: number;
  rows: number;
  symbols: number;
  bytes: number;
  records: number;
  /** WAL payload bytes applied (since this process started). */
  walBytes: number;
  snapshots: number;
  snapshotFailures: number;
  lastSnapshotLsn: number;
  /** P the hot set evicted against: every record with LSN <= P is in ClickHouse. */
  persistedLsn: number;
  /** T_persisted of the last watermark: the newest tick timestamp covered by P. */
  tPersistedMicros: number;
  /** Eviction horizon H: RAM holds every row with ts >= H (0: nothing evicted yet). */
  horizonMicros: number;
  /** Newest tick timestamp applied (0 before the first tick). */
  newestTickMicros: number;
  /** Records applied to the hot set and not yet covered by P (since this process started). */
  lagRecords: number;
  /** When the WAL stored the oldest of those records (ms; 0: none, or not known): the persistence lag is aged from it. */
  oldestUnpersistedAtMs: number;
  /** Lease revision of the last watermark's writer. */
  watermarkLeaseRevision: number;
  watermarks: number;
  /** Watermarks refused: an older lease revision than the highest seen (a stale owner's). */
  refusedWatermarks: number;
  evictedRows: number;
}

export interface ShardContext {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly snapshotIntervalMs: number;
  /** [0, 1): the first scheduled snapshot comes after (1 - phase / 2) intervals (see ShardInput). */
  readonly snapshotPhase: number;
  /** Snapshot once this many records were applied since the last one (0: no such trigger). */
  readonly snapshotRecords: number;
  /** stats.records when the last snapshot started. */
  recordsAtSnapshot: number;
  /** Snapshot once this many WAL bytes were applied since the last one (0: no such trigger). */
  readonly snapshotWalBytes: number;
  /** stats.walBytes when the last snapshot started. */
  walBytesAtSnapshot: number;
  readonly retention: HotRetention;
  /** Eviction by age is held (lag remediation): only the memory budget evicts. */
  evictionHeld: boolean;
  table: HotTable;
  stats: ShardStats;
  /** LSNs applied and not yet persisted (for lagRecords); mutated in place like the hot set. */
  readonly unpersisted: UnpersistedLsns;
  newestTickMicros: number;
  error: string | undefined;
  /** Consecutive WAL consumer failures since the shard last caught up (the backoff grows with them). */
  walRetries: number;
  /** Why the WAL consumer last broke (shown while the shard waits in walRetry). */
  walRetryError: string | undefined;
}

export interface ShardInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  /** 0 disables scheduled snapshots (on demand still works). */
  readonly snapshotIntervalMs?: number;
  /**
   * [0, 1), default 0: the first scheduled snapshot comes after (1 - phase / 2)
   * intervals, the later ones an interval apart. The wiring gives each shard its
   * own phase, so the shards a node started together do not all snapshot in the
   * same second (a snapshot below the off-loop size is written on the event loop).
   */
  readonly snapshotPhase?: number;
}

export type ShardEvent =
  | { type: "records"; records: readonly WalEntry[] }
  | { type: "caughtUp" }
  /** The WAL consumer failed; `fatal` when retrying cannot help (records it needs are gone). */
  | { type: "walError"; message: string; fatal: boolean }
  | { type: "snapshot" }
  | { type: "watermark"; persistedLsn: number; tPersistedMicros: number; leaseRevision: number }
  /** Lag remediation: keep persisted rows older than hotSeconds in RAM (within maxHotBytes), or let them go again. */
  | { type: "holdEviction"; hold: boolean }
  | { type: "drain" };

export interface WatermarksInput {
  readonly shard: ShardAddress;
}

export interface WalInput {
  readonly shard: ShardAddress;
  /** First LSN to deliver. */
  readonly fromLsn: number;
}

export interface SnapshotWriteInput {
  readonly shard: ShardAddress;
  readonly table: HotTable;
}

const statsOf = (table: HotTable, prev: ShardStats): ShardStats => ({
  ...prev,
  appliedLsn: table.appliedLsn,
  rows: table.rowCount,
  symbols: table.symbolCount,
  bytes: table.bytes,
  persistedLsn: table.persistedLsn,
  horizonMicros: table.horizonMicros,
});

/** Newest tick of a table loaded from a snapshot (-Infinity when empty). */
function newestTickOf(table: HotTable): number {
  let t = -Infinity;
  for (const e of table.entries()) {
    const last = e.series.lastTsMicros;
    if (last !== undefined && last > t) t = last;
  }
  return t;
}



export const shardMachine = setup({
  types: {
    context: {} as ShardContext,
    events: {} as ShardEvent,
    input: {} as ShardInput,
  },
  actors: {
    loadSnapshot: fromPromise<HotTable | undefined, { shard: ShardAddress; spec: TableSpec }>(async () => undefined),
    wal: fromCallback<ShardEvent, WalInput>(() => () => {}),
    watermarks: fromCallback<ShardEvent, WatermarksInput>(() => () => {}),
    writeSnapshot: fromPromise<{ lsn: number }, SnapshotWriteInput>(async ({ input }) => ({ lsn: input.table.appliedLsn })),
  },
  actions: {
    // The hot set is mutated in place (it is the one big mutable structure of a
    // shard); the machine only records what changed.
    apply: assign(({ context }, params: { records: readonly WalEntry[] }) => {
      let error: string | undefined;
      let newest = context.newestTickMicros;
      let walBytes = 0;
      for (const r of params.records) walBytes += r.data.byteLength;
      try {
        for (const r of params.records) {
          const a = applyWalRecord(context.table, context.spec, r);
          if (a.rows > 0) {
            if (a.maxTsMicros > newest) newest = a.maxTsMicros;
            if (r.lsn > context.table.persistedLsn) context.unpersisted.push(r.lsn, r.appendedAtMs);
          }
        }
      } catch (e) {
        if (!(e instanceof WalApplyError)) throw e;
        // A record this shard cannot read: stop here rather than serve a hot set with a hole.
        const s = context.shard;
        error = e.unreadable
          ? `${e.message}; the shard stopped before it (nothing after it is applied, nothing is lost). Fix what wrote it; to go on without it (its rows are lost): pxctl shard skip-record --tenant ${s.tenant} --table ${s.table} --bucket ${s.bucket} --lsn ${e.lsn}`
          : e.message;
      }
      return {
        error,
        newestTickMicros: newest,
        stats: {
          ...statsOf(context.table, context.stats),
          records: context.stats.records + params.records.length,
          walBytes: context.stats.walBytes + walBytes,
          newestTickMicros: Number.isFinite(newest) ? newest : 0,
          lagRecords: context.unpersisted.count,
          oldestUnpersistedAtMs: context.unpersisted.oldestAtMs,
        },
      };
    }),
    // The sink persisted up to P: evict what is both persisted and outside the hot retention.
    evict: assign(({ context }, params: { persistedLsn: number; tPersistedMicros: number; leaseRevision: number; snapshotting?: boolean }) => {
      const table = context.table;
      const p = Math.max(table.persistedLsn, params.persistedLsn);
      // Held: the age horizon stays where it is; maxHotBytes still evicts the oldest persisted rows (memory wins).
      // While a snapshot is taken, likewise: the writer exports the hot set in slices between which the event loop
      // runs, and an eviction in between restarts the export (after three, it copies the whole table in one turn,
      // stalling ingest and queries). With a watermark every ~200 ms per shard that was every snapshot; the age
      // horizon catches up on the first watermark after it.
      const retention = context.evictionHeld || params.snapshotting === true ? { ...context.retention, hotMicros: Infinity } : context.retention;
      const { evictedRows } = evictForRetention(table, p, context.newestTickMicros, retention);
      context.unpersisted.prune(p);
      return {
        stats: {
          ...statsOf(table, context.stats),
          tPersistedMicros: Math.max(context.stats.tPersistedMicros, params.tPersistedMicros),
          watermarkLeaseRevision: Math.max(context.stats.watermarkLeaseRevision, params.leaseRevision),
          watermarks: context.stats.watermarks + 1,
          evictedRows: context.stats.evictedRows + evictedRows,
          lagRecords: context.unpersisted.count,
          oldestUnpersistedAtMs: context.unpersisted.oldestAtMs,
        },
      };
    }),
  },
  guards: {
    broken: ({ context }) => context.error !== undefined,
    fatal: (_, params: { fatal: boolean }) => params.fatal,
    scheduled: ({ context }) => context.snapshotIntervalMs > 0,
    /** Scheduled, and records were applied since the snapshot the shard last wrote or loaded. */
    scheduledWithNews: ({ context }) => context.snapshotIntervalMs > 0 && context.table.appliedLsn !== context.stats.lastSnapshotLsn,
    snapshotDue: ({ context }) =>
      (context.snapshotRecords > 0 && context.stats.records - context.recordsAtSnapshot >= context.snapshotRecords) ||
      (context.snapshotWalBytes > 0 && context.stats.walBytes - context.walBytesAtSnapshot >= context.snapshotWalBytes),
  },
  delays: {
    snapshotInterval: ({ context }) =>
      context.stats.snapshots + context.stats.snapshotFailures === 0 ? Math.round(context.snapshotIntervalMs * (1 - context.snapshotPhase / 2)) : context.snapshotIntervalMs,
    /** 0.5 s, doubling per consecutive failure, at most 10 s. */
    walRetry: ({ context }) => Math.min(10_000, 500 * 2 ** Math.max(0, context.walRetries - 1)),
  },
}).createMachine({
  id: "shard",
  context: ({ input }) => ({
    shard: input.shard,
    spec: input.spec,
    // The table's policy wins over the node's schedule.
    snapshotIntervalMs: input.spec.snapshot?.intervalSeconds !== undefined ? input.spec.snapshot.intervalSeconds * 1000 : (input.snapshotIntervalMs ?? 0),
    snapshotPhase: Math.min(0.999, Math.max(0, input.snapshotPhase ?? 0)),
    snapshotRecords: input.spec.snapshot?.records ?? 0,
    recordsAtSnapshot: 0,
    snapshotWalBytes: input.spec.snapshot?.walBytes ?? 0,
    walBytesAtSnapshot: 0,
    retention: { hotMicros: input.spec.retention.hotSeconds * 1_000_000, maxHotBytes: input.spec.retention.maxHotBytes },
    evictionHeld: false,
    table: new HotTable(input.spec),
    stats: {
      appliedLsn: 0,
      rows: 0,
      symbols: 0,
      bytes: 0,
      records: 0,
      walBytes: 0,
      snapshots: 0,
      snapshotFailures: 0,
      lastSnapshotLsn: 0,
      persistedLsn: 0,
      tPersistedMicros: 0,
      horizonMicros: 0,
      newestTickMicros: 0,
      lagRecords: 0,
      oldestUnpersistedAtMs: 0,
      watermarkLeaseRevision: 0,
      watermarks: 0,
      refusedWatermarks: 0,
      evictedRows: 0,
    },
    unpersisted: new UnpersistedLsns(),
    newestTickMicros: -Infinity,
    error: undefined,
    walRetries: 0,
    walRetryError: undefined,
  }),
  initial: "recovering",
  on: { holdEviction: { actions: assign({ evictionHeld: ({ event }) => event.hold }) } },
  states: {
    recovering: {
      invoke: {
        src: "loadSnapshot",
        input: ({ context }) => ({ shard: context.shard, spec: context.spec }),
        onDone: {
          target: "running",
          actions: assign(({ context, event }) => {
            const table = event.output ?? context.table;
            const newest = newestTickOf(table);
            return {
              table,
              newestTickMicros: newest,
              stats: { ...statsOf(table, context.stats), lastSnapshotLsn: table.appliedLsn, newestTickMicros: Number.isFinite(newest) ? newest : 0 },
            };
          }),
        },
        // The loader already falls back through older snapshots; an error here
        // means the store itself failed: rebuild from the whole WAL instead.
        onError: { target: "running" },
      },
    },
    running: {
      always: { guard: "broken", target: "failed" },
      invoke: [
        {
          id: "wal",
          src: "wal",
          input: ({ context }) => ({ shard: context.shard, fromLsn: context.table.appliedLsn + 1 }),
        },
        { id: "watermarks", src: "watermarks", input: ({ context }) => ({ shard: context.shard }) },
      ],
      on: {
        records: [
          {
            actions: { type: "apply", params: ({ event }) => ({ records: event.records }) },
          },
        ],
        watermark: [
          {
            // Fenced reader: a watermark of an older lease revision than one already seen is a stale owner's.
            guard: ({ context, event }) => event.leaseRevision < context.stats.watermarkLeaseRevision,
            actions: assign({ stats: ({ context }) => ({ ...context.stats, refusedWatermarks: context.stats.refusedWatermarks + 1 }) }),
          },
          {
            actions: {
              type: "evict",
              params: ({ event }) => ({ persistedLsn: event.persistedLsn, tPersistedMicros: event.tPersistedMicros, leaseRevision: event.leaseRevision }),
            },
          },
        ],
        walError: [
          {
            guard: { type: "fatal", params: ({ event }) => ({ fatal: event.fatal }) },
            target: "failed",
            actions: assign({ error: ({ event }) => `WAL consumer failed: ${event.message}` }),
          },
          {
            target: "walRetry",
            actions: assign({ walRetries: ({ context }) => context.walRetries + 1, walRetryError: ({ event }) => event.message }),
          },
        ],
        drain: { target: "draining" },
      },
      initial: "replaying",
      states: {
        replaying: {
          on: { caughtUp: { target: "live", actions: assign({ walRetries: 0, walRetryError: undefined }) } },
        },
        live: {
          always: { guard: "snapshotDue", target: "snapshotting" },
          after: {
            snapshotInterval: [
              { guard: "scheduledWithNews", target: "snapshotting" },
              // Nothing applied since the last snapshot (a market closed, a shard at rest): it still holds every
              // record; writing it again would only cost CPU and the object store's churn. Looked at again an interval later.
              { guard: "scheduled", target: "live", reenter: true },
            ],
          },
          on: { snapshot: { target: "snapshotting" } },
        },
        snapshotting: {
          // Counted from the start: a failed write waits for as many records again before the next try.
          entry: assign({ recordsAtSnapshot: ({ context }) => context.stats.records, walBytesAtSnapshot: ({ context }) => context.stats.walBytes }),
          on: {
            // As in `running`, but eviction by age waits for the snapshot (see the evict action).
            watermark: [
              {
                guard: ({ context, event }) => event.leaseRevision < context.stats.watermarkLeaseRevision,
                actions: assign({ stats: ({ context }) => ({ ...context.stats, refusedWatermarks: context.stats.refusedWatermarks + 1 }) }),
              },
              {
                actions: {
                  type: "evict",
                  params: ({ event }) => ({ persistedLsn: event.persistedLsn, tPersistedMicros: event.tPersistedMicros, leaseRevision: event.leaseRevision, snapshotting: true }),
                },
              },
            ],
          },
          invoke: {
            src: "writeSnapshot",
            input: ({ context }) => ({ shard: context.shard, table: context.table }),
            onDone: {
              target: "live",
              actions: assign({ stats: ({ context, event }) => ({ ...context.stats, snapshots: context.stats.snapshots + 1, lastSnapshotLsn: event.output.lsn }) }),
            },
            onError: {
              target: "live",
              actions: assign({ stats: ({ context }) => ({ ...context.stats, snapshotFailures: context.stats.snapshotFailures + 1 }) }),
            },
          },
        },
      },
    },
    walRetry: {
      // Re-entering running opens a new consumer from appliedLsn + 1 (replaying until caught up again).
      after: { walRetry: { target: "running" } },
      on: { drain: { target: "stopped" } },
    },
    draining: {
      // Leaving `running` stopped the WAL consumer; nothing else holds resources.
      always: { target: "stopped" },
    },
    stopped: { type: "final" },
    failed: {
      on: { drain: { target: "stopped" } },
    },
  },
});
