// The controller machine's IO over the control stores: lease reads and
// compare-and-set writes, fenced assignment writes, heartbeat, spec and
// placement-override watchers, and clearing void overrides. Provide with controllerMachine.provide({ actors: controllerActors(...) }).
import { fromCallback, fromPromise } from "xstate";
import type { AcquireInput, ControllerEvent, FenceInput, OverrideClear, RenewInput, WriteInput } from "../../../actors/controller.js";
import { isConflict, runWatch, shardKey } from "../../control/index.js";
import type { ShardStatus } from "../../../protocols/shardstatus.js";
import type { AssignmentStore, AssignmentTable, CatalogSource, HeartbeatStore, LeaseStore, OverrideStore, StoredLease } from "../../control/index.js";

export interface ControllerIO {
  readonly lease: LeaseStore;
  readonly assignments: AssignmentStore;
  readonly heartbeats: HeartbeatStore;
  readonly overrides: OverrideStore;
  readonly catalog: CatalogSource;
  readonly log?: (line: string) => void;
}

/** What a heartbeat says the node hosts: shard key -> the lease revision it runs under. */
function reportedShards(shards: readonly ShardStatus[]): ReadonlyMap<string, number> {
  return new Map(shards.map((s) => [shardKey(s), s.leaseRevision]));
}

export function controllerActors(io: ControllerIO) {
  const log = io.log ?? (() => {});
  return {
    readLease: fromPromise<StoredLease | undefined>(() => io.lease.read()),
    acquireLease: fromPromise<number, AcquireInput>(({ input }) => io.lease.acquire(input.record, input.observedRevision)),
    renewLease: fromPromise<number, RenewInput>(({ input }) => io.lease.renew(input.record, input.revision)),
    releaseLease: fromPromise<void, RenewInput>(({ input }) => io.lease.release(input.record, input.revision)),
    fenceAssignments: fromPromise<AssignmentTable, FenceInput>(({ input }) => io.assignments.fence(input.holder, input.term, input.nowMs)),
    writeAssignments: fromPromise<AssignmentTable, WriteInput>(({ input }) => io.assignments.write(input.table, input.writes, input.term, input.nowMs)),
    clearOverrides: fromPromise<readonly OverrideClear[], { clears: readonly OverrideClear[] }>(async ({ input }) => {
      const cleared: OverrideClear[] = [];
      for (const c of input.clears) {
        try {
          await io.overrides.clear(c.key, c.revision);
          cleared.push(c);
        } catch (e) {
          // Replaced by a newer move since: that one stands.
          if (!isConflict(e)) throw e;
        }
      }
      return cleared;
    }),
    watchOverrides: fromCallback<ControllerEvent>(({ sendBack }) =>
      runWatch(
        (onBroken) => {
          // Keys this open delivered: an override deleted while a broken watch was blind is dropped at synced.
          const present = new Set<string>();
          return io.overrides.watch(
            (c) => {
              if (c.stored === undefined) present.delete(c.key);
              else present.add(c.key);
              sendBack(c.stored === undefined ? { type: "override.cleared", key: c.key } : { type: "override.set", key: c.key, node: c.stored.override.node, revision: c.stored.revision });
            },
            () => sendBack({ type: "overrides.synced", keys: [...present] }),
            onBroken,
          );
        },
        (e) => log(`controller: cannot watch px_placement (re-opening it): ${(e as Error).message}`),
      ),
    ),
    // Re-opened when it breaks: a re-delivered heartbeat revision is no sign of life (liveness.ts), a node gone meanwhile goes stale.
    watchNodes: fromCallback<ControllerEvent>(({ sendBack }) =>
      runWatch(
        (onBroken) =>
          io.heartbeats.watch(
            (c) =>
              sendBack(
                c.type === "seen"
                  ? { type: "node.seen", nodeId: c.nodeId, revision: c.revision, info: { state: c.info.state, capacityShards: c.info.capacityShards, shards: reportedShards(c.info.shards) } }
                  : { type: "node.gone", nodeId: c.nodeId },
              ),
            () => sendBack({ type: "nodes.synced" }),
            onBroken,
          ),
        (e) => log(`controller: cannot watch px_nodes (re-opening it): ${(e as Error).message}`),
      ),
    ),
    watchCatalog: fromCallback<ControllerEvent>(({ sendBack }) =>
      runWatch(
        () => io.catalog.watch((catalog) => sendBack({ type: "catalog", catalog })),
        (e) => log(`controller: cannot watch px_config: ${(e as Error).message}`),
      ),
    ),
  };
}
