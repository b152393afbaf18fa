// The sinks' permits are renewed from when the agent's heartbeat was sent, not
// from when its reply came back, and a lapsed permit is renewed only once
// px_assign is read again. A chaos run (node-pause, seed 62) found ClickHouse
// holding four records of a shard twice: its former owner, SIGSTOPped while a
// heartbeat put was in flight, got the put's reply after SIGCONT, renewed its
// sink's permit for another 1.5 s from then, and its sink sent one INSERT of
// records the new owner had written before the watch of px_assign revoked it.
import { describe, expect, it } from "vitest";
import { createActor, toPromise } from "xstate";
import { agentActors } from "../../src/node/control/index.js";
import type { Assignment, AssignmentStore, HeartbeatStore, LeaseConfirm, ShardHost } from "../../src/control/index.js";
import { shardKey } from "../../src/control/index.js";

const shard = { tenant: "t", table: "trades", bucket: 3 };

function rig(putMs: number, assignment: Assignment | undefined) {
  const renewals: { sentAgoMs: number; confirm: LeaseConfirm }[] = [];
  const host: ShardHost = {
    start: async () => {},
    stop: async () => {},
    status: () => [],
    renewLeases: (sentAgoMs, confirm) => renewals.push({ sentAgoMs, confirm }),
  };
  // The put's reply comes `putMs` later: a process paused with the put in flight.
  const heartbeats = { put: () => new Promise<void>((r) => setTimeout(r, putMs)) } as unknown as HeartbeatStore;
  const assignments = { read: async () => new Map(assignment === undefined ? [] : [[shardKey(shard), assignment]]) } as unknown as AssignmentStore;
  const actors = agentActors({ nodeId: "n2", address: "n2:1", softwareVersion: "test", host, heartbeats, assignments });
  return { renewals, run: () => toPromise(createActor(actors.sendHeartbeat, { input: { phase: "running", hosted: [] } }).start()) };
}

const held = (node: string, leaseRevision: number): Assignment => ({ node, leaseRevision, term: 1, assignedAtMs: 0 });

describe("agent - sink permits renewed from the heartbeat's send", () => {
  it("leaserenew - a put whose reply came 300 ms late renews with the time since it was sent", async () => {
    const { renewals, run } = rig(300, held("n2", 19));
    await run();
    expect(renewals).toHaveLength(1);
    expect(renewals[0]!.sentAgoMs).toBeGreaterThanOrEqual(290);
  });

  it("leaserenew - confirm reads px_assign: the same node and lease revision hold; moved or re-leased do not", async () => {
    for (const [a, want] of [
      [held("n2", 19), true],
      [held("n3", 26), false],
      [held("n2", 20), false],
      [undefined, false],
    ] as const) {
      const { renewals, run } = rig(0, a);
      await run();
      expect(await renewals[0]!.confirm(shard, 19), JSON.stringify(a)).toBe(want);
    }
  });
});
