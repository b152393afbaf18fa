// Control plane on one real nats-server: KV fencing, controller + agents placing
// and moving shards, the control server answering pxctl in-process.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import { AssignmentStore, controlBackend, FencedError, isConflict, MetadataStore, natsControlKv, openControlStores, openKv, OverrideStore, startControlServer } from "../../src/control/index.js";
import type { ControlServer } from "../../src/control/index.js";
import { startAgent, startController, startControlPlane } from "../../src/node/control/index.js";
import type { AgentHandle, ControllerHandle, ControlPlane } from "../../src/node/control/index.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { FakeHost } from "./fakes.js";

let f: NatsFixture;
beforeAll(async () => {
  f = await natsFixture();
});
afterAll(async () => {
  await f?.close();
});

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function cli(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    run: (...argv: string[]) =>
      runPxctl(["--nats", f.server.url, ...argv], {
        stdout: (t) => out.push(t),
        stderr: (t) => err.push(t),
        readFile: async (p) => {
          if (!(p in files)) throw new Error("no such file");
          return files[p]!;
        },
        prompt: async () => "y",
        env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") },
      }),
  };
}

const SPEC = parseClusterSpec({ tenants: [{ name: "acme", tables: [{ name: "trades", shards: 4, columns: [{ name: "price", type: "float64" }] }] }] });

describe("control plane on one nats-server", () => {
  it("fencing - NATS rejects a write from the writer that lost px_assign", async () => {
    const kv = natsControlKv(f.nc, await openKv(f.nc, "px_fence_test"), "px_fence_test");
    const store = new AssignmentStore(kv);
    const old = await store.fence("c1", 1, Date.now());
    const step = await store.write(old, [{ key: "acme.trades.0", node: "n1" }], 1, Date.now());
    const fresh = await store.fence("c2", 2, Date.now());
    await expect(store.write(step, [{ key: "acme.trades.0", node: "n9" }], 1, Date.now())).rejects.toBeInstanceOf(FencedError);
    const next = await store.write(fresh, [{ key: "acme.trades.0", node: "n2" }, { key: "acme.trades.1", node: undefined }], 2, Date.now());
    const read = await store.read();
    expect(read.get("acme.trades.0")).toEqual({ node: "n2", leaseRevision: next.lastRevision - 1, term: 2, assignedAtMs: expect.any(Number) });
  });

  it("overrides - px_placement: a clear at a stale revision is rejected (a newer move stands), at the current one it deletes", async () => {
    const kv = natsControlKv(f.nc, await openKv(f.nc, "px_placement_test"), "px_placement_test");
    const store = new OverrideStore(kv);
    const first = await store.set("acme.trades.0", { node: "n1", from: "n2", by: "remediation", reason: "test", requestedAtMs: 1 });
    const second = await store.set("acme.trades.0", { node: "n3", from: "n2", by: "operator", reason: "test", requestedAtMs: 2 });
    const stale = await store.clear("acme.trades.0", first).then(() => undefined, (e: unknown) => e);
    expect(isConflict(stale), String(stale)).toBe(true);
    expect((await store.read()).get("acme.trades.0")).toMatchObject({ revision: second, override: { node: "n3", by: "operator" } });
    await store.clear("acme.trades.0", second);
    expect((await store.read()).size).toBe(0);
  });

  describe("controller, agents and pxctl", () => {
    let metadata: MetadataStore;
    let ctl: ControllerHandle;
    let server: ControlServer;
    const agents: AgentHandle[] = [];
    const hosts = new Map<string, FakeHost>();
    beforeAll(async () => {
      metadata = await MetadataStore.open(f.nc);
      await metadata.applyCurrent(SPEC);
      const stores = await openControlStores(f.nc);
      ctl = await startController(f.nc, { id: "c1", stores, leaseMs: 1_000, nodeTimeoutMs: 1_000, reconcileMs: 200 });
      server = startControlServer(f.nc, controlBackend(metadata, stores));
      for (const id of ["n1", "n2"]) {
        const host = new FakeHost();
        hosts.set(id, host);
        agents.push(await startAgent(f.nc, { nodeId: id, address: `${id}:8080`, host, stores, heartbeatMs: 200, isolationMs: 2_000 }));
      }
    });
    afterAll(async () => {
      for (const a of agents) await a.stop();
      await ctl?.stop();
      await server?.stop();
    });

    it("control - every shard runs on exactly one node", async () => {
      await until("4 shards started", () => [...hosts.values()].reduce((n, h) => n + h.running.size, 0) === 4);
      const a = await ctl.stores.assignments.read();
      for (const [key, asg] of a) expect(hosts.get(asg.node)!.running.get(key)).toBe(asg.leaseRevision);
    });

    it("pxctl - status, get and describe answer from the control server", async () => {
      const c = cli();
      await until("shards reported live", async () => {
        c.out.length = 0;
        return (await c.run("status")) === EXIT.ok && !c.out.join("\n").includes("pending");
      });
      expect(c.out.join("\n")).toMatch(/leader: c1 \(term \d+/);
      expect(c.out.join("\n")).toMatch(/acme\.trades\.0\s+n[12]\s+live/);
      const j = cli();
      expect(await j.run("get", "nodes", "-o", "json")).toBe(EXIT.ok);
      expect(JSON.parse(j.out.join("")).map((n: { id: string }) => n.id)).toEqual(["n1", "n2"]);
      const d = cli();
      expect(await d.run("describe", "table", "trades", "-o", "yaml")).toBe(EXIT.ok);
      expect(d.out.join("\n")).toMatch(/kind: table/);
      const missing = cli();
      expect(await missing.run("describe", "node", "nope")).toBe(EXIT.notFound);
      expect(missing.err.join("")).toMatch(/node nope does not exist \(known: n1, n2\)/);
    });

    it("pxctl - apply shows the diff, applies, and the new shards get placed", async () => {
      const spec = "tenants:\n  - name: acme\n    tables:\n      - name: trades\n        shards: 4\n        columns: [{name: price, type: float64}]\n      - name: quotes\n        shards: 2\n        columns: [{name: bid, type: float64}]\n";
      const dry = cli({ "s.yaml": spec });
      expect(await dry.run("apply", "-f", "s.yaml", "--dry-run")).toBe(EXIT.ok);
      expect(dry.out.join("\n")).toMatch(/\+ table acme\.quotes \(2 shards/);
      expect((await metadata.tenants()).get("acme")!.spec.tables).toHaveLength(1);
      const real = cli({ "s.yaml": spec });
      expect(await real.run("apply", "-f", "s.yaml")).toBe(EXIT.ok);
      expect(real.out.join("\n")).toMatch(/applied \(acme@\d+\)/);
      await until("6 shards started", () => [...hosts.values()].reduce((n, h) => n + h.running.size, 0) === 6);
      const again = cli({ "s.yaml": spec });
      expect(await again.run("apply", "-f", "s.yaml")).toBe(EXIT.ok);
      expect(again.out.join("\n")).toMatch(/no changes/);
      const bad = cli({ "bad.yaml": "tenants: [{name: Acme, tables: []}]" });
      expect(await bad.run("apply", "-f", "bad.yaml")).toBe(EXIT.usage);
      expect(bad.err.join("")).toMatch(/tenant name must be lowercase/);
    });

    it("failover - a node that stops heartbeating loses its shards to the survivor", async () => {
      const victim = agents[1]!;
      const before = await ctl.stores.assignments.read();
      const moving = [...before].filter(([, a]) => a.node === "n2").map(([k]) => k);
      expect(moving.length).toBeGreaterThan(0);
      victim.actor.stop(); // a crash: no drain, heartbeat left behind
      const t0 = Date.now();
      await until("n2's shards on n1", () => moving.every((k) => hosts.get("n1")!.running.has(k)), 10_000);
      const took = Date.now() - t0;
      expect(took).toBeLessThan(3_000); // node timeout 1 s + reconcile
      const after = await ctl.stores.assignments.read();
      for (const k of moving) expect(after.get(k)!.leaseRevision).toBeGreaterThan(before.get(k)!.leaseRevision);
      agents.splice(1, 1);
    });
  });

  it("pxctl - token create, list and revoke go to px_tokens", async () => {
    const c = cli();
    expect(await c.run("token", "create", "--tenant", "acme", "--role", "reader", "--ttl", "1h", "--note", "dashboards")).toBe(EXIT.ok);
    const token = c.out.join("").trim();
    expect(token).toMatch(/^px_/);
    const l = cli();
    expect(await l.run("token", "list", "--tenant", "acme", "-o", "json")).toBe(EXIT.ok);
    const listed = JSON.parse(l.out.join("")) as { id: string; role: string; note: string; revokedAtMs: number | null }[];
    const mine = listed.find((t) => token.startsWith(`px_${t.id}.`));
    expect(mine).toMatchObject({ role: "reader", note: "dashboards", revokedAtMs: null });
    expect(await cli().run("token", "revoke", `px_${mine!.id}`)).toBe(EXIT.ok);
    const after = cli();
    expect(await after.run("token", "list")).toBe(EXIT.ok);
    expect(after.out.join("\n")).toMatch(new RegExp(`px_${mine!.id}\\s+acme\\s+reader\\s+\\*\\s+revoked`));
    // Table grants: listed, and a bad table name is refused naming the rule.
    const granted = cli();
    expect(await granted.run("token", "create", "--tenant", "acme", "--role", "reader", "--tables", "trades,quotes", "-o", "json")).toBe(EXIT.ok);
    expect(JSON.parse(granted.out.join(""))).toMatchObject({ tenant: "acme", role: "reader", tables: ["trades", "quotes"] });
    const withGrants = cli();
    expect(await withGrants.run("token", "list", "--tenant", "acme")).toBe(EXIT.ok);
    expect(withGrants.out.join("\n")).toMatch(/acme\s+reader\s+quotes,trades\s+active/);
    const badTable = cli();
    expect(await badTable.run("token", "create", "--tenant", "acme", "--role", "reader", "--tables", "acme.trades")).not.toBe(EXIT.ok);
    expect(badTable.err.join("")).toMatch(/table "acme.trades" is not a table name .*no tenant prefix/);
    const bad = cli();
    expect(await bad.run("token", "create", "--tenant", "acme", "--role", "root")).toBe(EXIT.usage);
    expect(await cli().run("token", "revoke", "px_doesnotexist")).toBe(EXIT.notFound);
  });

  it("pxctl - no node answering is exit 3; unreachable NATS is exit 3", async () => {
    const fresh = await natsFixture();
    try {
      const out: string[] = [];
      const io = { stdout: () => {}, stderr: (t: string) => out.push(t), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: fresh.server.auth!.credsPath("admin") } };
      expect(await runPxctl(["--nats", fresh.server.url, "status", "--timeout", "500"], io)).toBe(EXIT.unreachable);
      expect(out.join("")).toMatch(/no Proxist node answers/);
      expect(await runPxctl(["--nats", "nats://127.0.0.1:1", "status"], io)).toBe(EXIT.unreachable);
      expect(out.join("")).toMatch(/cannot reach NATS/);
    } finally {
      await fresh.close();
    }
  });
});

describe("control plane of whole nodes (startControlPlane)", () => {
  it("plane - two nodes: one leads, shards spread, a drained node hands its shards over, the survivor takes the lead", async () => {
    const fx = await natsFixture();
    const planes: ControlPlane[] = [];
    try {
      const metadata = await MetadataStore.open(fx.nc);
      await metadata.applyCurrent(SPEC);
      const hostsOf = new Map<string, FakeHost>();
      for (const id of ["a", "b"]) {
        const host = new FakeHost();
        hostsOf.set(id, host);
        planes.push(await startControlPlane(fx.nc, { nodeId: id, address: `${id}:8080`, host, metadata, heartbeatMs: 100, nodeTimeoutMs: 500, leaseMs: 600, reconcileMs: 100, drainTimeoutMs: 3_000 }));
      }
      const running = (): number => [...hostsOf.values()].reduce((n, h) => n + h.running.size, 0);
      await until("4 shards on 2 nodes", () => running() === 4 && [...hostsOf.values()].every((h) => h.running.size > 0));
      expect(planes.filter((p) => p.state().role === "leader")).toHaveLength(1);
      const leader = planes.find((p) => p.state().role === "leader")!;
      const other = planes.find((p) => p !== leader)!;
      const leaderHost = hostsOf.get(leader.agent === planes[0]!.agent ? "a" : "b")!;
      const otherHost = hostsOf.get(leaderHost === hostsOf.get("a") ? "b" : "a")!;
      await leader.drain();
      expect(leaderHost.running.size).toBe(0);
      await until("the survivor leads and runs every shard", () => other.state().role === "leader" && otherHost.running.size === 4);
      planes.splice(planes.indexOf(leader), 1);
    } finally {
      for (const p of planes) await p.stop();
      await fx.close();
    }
  });
});
