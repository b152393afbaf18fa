// Shard actor: owns one shard's hot set. recovering (load the newest valid
// snapshot) -> replaying (ordered WAL consumer from the snapshot's LSN + 1)
// -> live, with snapshotting on a schedule or on demand, draining on request
// and failed when the WAL holds a record it cannot apply. IO is injected:
// `loadSnapshot`, `wal` and `writeSnapshot` come from the runtime or from fakes.
import { assign, fromCallback, fromPromise, setup } from "xstate";
import type { ShardAddress } from "../protocols/subjects.js";
import type { TableSpec } from "../protocols/tablespec.js";
import { HotTable } from "../src/hotset/index.js";
import { WalApplyError, applyWalRecord } from "../src/shard/apply.js";
import type { WalEntry } from "../src/shard/apply.js";

export interface ShardStats {
  appliedLsn: number;
  rows: number;
  symbols: number;
  bytes: number;
  records: number;
  snapshots: number;
  snapshotFailures: number;
  lastSnapshotLsn: number;
}

export interface ShardContext {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  readonly snapshotIntervalMs: number;
  table: HotTable;
  stats: ShardStats;
  error: string | undefined;
}

export interface ShardInput {
  readonly shard: ShardAddress;
  readonly spec: TableSpec;
  /** 0 disables scheduled snapshots (on demand still works). */
  readonly snapshotIntervalMs?: number;
}

export type ShardEvent =
  | { type: "records"; records: readonly WalEntry[] }
  | { type: "caughtUp" }
  | { type: "walError"; message: string }
  | { type: "snapshot" }
  | { type: "drain" };

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
});

export const shardMachine = setup({
  types: {
    context: {} as ShardContext,
    events: {} as ShardEvent,
    input: {} as ShardInput,
  },
  actors: {
    loadSnapshot: fromPromise<HotTable | undefined, { shard: ShardAddress; spec: TableSpec }>(async () => undefined),
    wal: fromCallback<ShardEvent, WalInput>(() => () => {}),
    writeSnapshot: fromPromise<{ lsn: number }, SnapshotWriteInput>(async ({ input }) => ({ lsn: input.table.appliedLsn })),
  },
  actions: {
    // The hot set is mutated in place (it is the one big mutable structure of a
    // shard); the machine only records what changed.
    apply: assign(({ context }, params: { records: readonly WalEntry[] }) => {
      let error: string | undefined;
      try {
        for (const r of params.records) applyWalRecord(context.table, context.spec, r);
      } catch (e) {
        if (!(e instanceof WalApplyError)) throw e;
        // A record this shard cannot read: stop here rather than serve a hot set with a hole.
        error = e.message;
      }
      return { error, stats: { ...statsOf(context.table, context.stats), records: context.stats.records + params.records.length } };
    }),
  },
  guards: {
    broken: ({ context }) => context.error !== undefined,
    scheduled: ({ context }) => context.snapshotIntervalMs > 0,
  },
  delays: {
    snapshotInterval: ({ context }) => context.snapshotIntervalMs,
  },
}).createMachine({
  id: "shard",
  context: ({ input }) => ({
    shard: input.shard,
    spec: input.spec,
    snapshotIntervalMs: input.snapshotIntervalMs ?? 0,
    table: new HotTable(input.spec),
    stats: { appliedLsn: 0, rows: 0, symbols: 0, bytes: 0, records: 0, snapshots: 0, snapshotFailures: 0, lastSnapshotLsn: 0 },
    error: undefined,
  }),
  initial: "recovering",
  states: {
    recovering: {
      invoke: {
        src: "loadSnapshot",
        input: ({ context }) => ({ shard: context.shard, spec: context.spec }),
        onDone: {
          target: "running",
          actions: assign(({ context, event }) => {
            const table = event.output ?? context.table;
            return { table, stats: { ...statsOf(table, context.stats), lastSnapshotLsn: table.appliedLsn } };
          }),
        },
        // The loader already falls back through older snapshots; an error here
        // means the store itself failed: rebuild from the whole WAL instead.
        onError: { target: "running" },
      },
    },
    running: {
      always: { guard: "broken", target: "failed" },
      invoke: {
        id: "wal",
        src: "wal",
        input: ({ context }) => ({ shard: context.shard, fromLsn: context.table.appliedLsn + 1 }),
      },
      on: {
        records: [
          {
            actions: { type: "apply", params: ({ event }) => ({ records: event.records }) },
          },
        ],
        walError: { target: "failed", actions: assign({ error: ({ event }) => `WAL consumer failed: ${event.message}` }) },
        drain: { target: "draining" },
      },
      initial: "replaying",
      states: {
        replaying: {
          on: { caughtUp: { target: "live" } },
        },
        live: {
          after: { snapshotInterval: { guard: "scheduled", target: "snapshotting" } },
          on: { snapshot: { target: "snapshotting" } },
        },
        snapshotting: {
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
