// The agent machine's IO: heartbeats into px_nodes (with the host's shard
// status), the px_assign watcher, and ShardHost calls. Provide with
// agentMachine.provide({ actors: agentActors(...) }).
import { fromCallback, fromPromise } from "xstate";
import type { AgentEvent, ApplyResult, HeartbeatInput, HeartbeatResult, HostedShard, ShardWork } from "../../../actors/agent.js";
import { runWatch, shardKey } from "../../control/index.js";
import type { Assignment, AssignmentStore, HeartbeatStore, ShardHost } from "../../control/index.js";
import type { HeartbeatCover } from "./heartbeatcover.js";
import type { ShardStatus } from "../../../protocols/shardstatus.js";

export interface AgentIO {
  readonly nodeId: string;
  /** How others reach this node (host:port of its APIs), shown by pxctl. */
  readonly address: string;
  readonly softwareVersion: string;
  /** Most shards this node takes; 0 = no limit. */
  readonly capacityShards?: number;
  readonly host: ShardHost;
  readonly heartbeats: HeartbeatStore;
  readonly assignments: AssignmentStore;
  /** ClickHouse health for status ("ok" or what failed); "" when unknown. */
  readonly clickhouseHealth?: () => string;
  readonly nowMicros?: () => number;
  readonly log?: (line: string) => void;
  /** A wait longer than this between two stored heartbeats is a gap: the node counts as live from the next one (default 2 s, the node timeout). */
  readonly liveGapMs?: number;
  /** Keeps the heartbeat going while the main thread is busy (./heartbeatcover.ts); told of every heartbeat put. */
  readonly cover?: Pick<HeartbeatCover, "sent" | "stop">;
}

/**
 * Host status of the shards the agent started, with the lease revision filled
 * in from what it started; `lost`: those the host does not run any more (a
 * restart on a new spec that failed after the stop, say). They are left out
 * of the heartbeat, so the leader sees them missing, and the agent starts
 * them again. They used to be reported as "starting", which hid the shard
 * being run by no node.
 */
export function shardStatuses(host: ShardHost, hosted: readonly HostedShard[]): { statuses: ShardStatus[]; lost: HostedShard[] } {
  const reported = new Map(host.status().map((s) => [shardKey(s), s]));
  const statuses: ShardStatus[] = [];
  const lost: HostedShard[] = [];
  for (const h of hosted) {
    const s = reported.get(shardKey(h.shard));
    // A host that does not know the revision reports 0.
    if (s) statuses.push({ ...s, leaseRevision: s.leaseRevision > 0 ? s.leaseRevision : h.leaseRevision });
    else lost.push(h);
  }
  return { statuses, lost };
}

export async function applyShardWork(host: ShardHost, work: ShardWork): Promise<ApplyResult> {
  const failed: { key: string; op: "start" | "stop"; message: string }[] = [];
  const stopped: string[] = [];
  const started: HostedShard[] = [];
  // Stops first: a restarted (fenced) shard must be gone before its successor starts.
  await Promise.all(
    work.stop.map(async (h) => {
      const key = shardKey(h.shard);
      try {
        await host.stop(h.shard);
      } catch (e) {
        failed.push({ key, op: "stop", message: (e as Error).message });
      }
      // Counted as stopped either way: the host must not keep a shard it failed to stop writing.
      stopped.push(key);
    }),
  );
  await Promise.all(
    work.start.map(async (h) => {
      try {
        await host.start(h.shard, h.leaseRevision);
        started.push(h);
      } catch (e) {
        failed.push({ key: shardKey(h.shard), op: "start", message: (e as Error).message });
      }
    }),
  );
  return { stopped, started, failed };
}

export function agentActors(io: AgentIO) {
  const log = io.log ?? (() => {});
  const nowMicros = io.nowMicros ?? (() => Date.now() * 1000);
  // Since when this node's heartbeats were stored without a gap (a pause, a partition, a failing KV): what the
  // leader's liveness table calls live since, reported so a node deciding a move can skip nodes still settling.
  let liveSinceMs: number | undefined;
  let lastStoredMs: number | undefined;
  const liveGapMs = io.liveGapMs ?? 2_000;
  return {
    sendHeartbeat: fromPromise<HeartbeatResult, HeartbeatInput>(async ({ input }) => {
      const { statuses, lost } = shardStatuses(io.host, input.hosted);
      const nowMs = nowMicros() / 1000;
      if (lastStoredMs === undefined || nowMs - lastStoredMs > liveGapMs) liveSinceMs = nowMs;
      const info = {
        nodeId: io.nodeId,
        address: io.address,
        softwareVersion: io.softwareVersion,
        sentAtMicros: nowMicros(),
        capacityShards: io.capacityShards ?? 0,
        state: input.phase,
        clickhouse: io.clickhouseHealth?.() ?? "",
        shards: statuses,
        liveForMs: Math.max(1, Math.round(nowMs - (liveSinceMs ?? nowMs))),
      };
      const sentAt = performance.now();
      await io.heartbeats.put(info);
      lastStoredMs = nowMs;
      io.cover?.sent(info);
      // Stored: this node was alive in px_nodes when the put was sent, so its sinks may write a while longer from
      // then, not from now: a put in flight when the process was paused (SIGSTOP) comes back after the pause, when
      // the controller may have moved the shards. A chaos run saw exactly that: the permit renewed on such a late
      // reply, one INSERT of records the new owner had written, ClickHouse holding them twice.
      // One read of px_assign for every lapsed permit of this heartbeat, not one per shard.
      let table: Promise<Map<string, Assignment>> | undefined;
      io.host.renewLeases?.(performance.now() - sentAt, async (shard, leaseRevision) => {
        table ??= io.assignments.read();
        const a = (await table).get(shardKey(shard));
        return a !== undefined && a.node === io.nodeId && a.leaseRevision === leaseRevision;
      });
      return { lost };
    }),
    // The cover stops first: it must not put the heartbeat back after it is removed.
    removeHeartbeat: fromPromise<void>(async () => {
      await io.cover?.stop();
      await io.heartbeats.remove(io.nodeId);
    }),
    applyShards: fromPromise<ApplyResult, ShardWork>(({ input }) => applyShardWork(io.host, input)),
    watchAssignments: fromCallback<AgentEvent>(({ sendBack }) =>
      runWatch(
        (onBroken) => {
          // The keys this open delivered: a watch re-opened after it broke resyncs, and an assignment deleted while it was
          // blind is one it does not deliver again (the agent drops those at synced).
          const present = new Set<string>();
          return io.assignments.watch(
            (c) => {
              // Fence first: the sink loses its permit before the agent schedules the stop.
              if (c.assignment === undefined) io.host.revoke?.(c.shard, "the assignment was removed from px_assign");
              else if (c.assignment.node !== io.nodeId) io.host.revoke?.(c.shard, `px_assign moved the shard to ${c.assignment.node} (lease revision ${c.assignment.leaseRevision})`);
              else io.host.revoke?.(c.shard, `px_assign holds a newer lease revision ${c.assignment.leaseRevision}`, c.assignment.leaseRevision);
              if (c.assignment === undefined) present.delete(c.key);
              else present.add(c.key);
              sendBack({ type: "assignment", key: c.key, shard: c.shard, assignment: c.assignment });
            },
            () => sendBack({ type: "assignments.synced", keys: [...present] }),
            onBroken,
          );
        },
        (e) => log(`agent ${io.nodeId}: cannot watch px_assign (re-opening it): ${(e as Error).message}`),
      ),
    ),
  };
}
