// Control plane on a three-server NATS cluster (R3 KV buckets): leader failover
// with a SIGSTOPped controller process, concurrent pxctl applies, and the loss
// of one NATS server.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { controlBackend, MetadataStore, openControlStores, startControlServer } from "../../src/control/index.js";
import type { ControlServer, ControlStores } from "../../src/control/index.js";
import { startAgent } from "../../src/node/control/index.js";
import type { AgentHandle } from "../../src/node/control/index.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { natsCluster } from "./natscluster.js";
import type { NatsCluster } from "./natscluster.js";
import { runTs } from "./children.js";
import type { Child } from "./children.js";
import { FakeHost } from "./fakes.js";

const LEASE_MS = 1_000;
let cluster: NatsCluster;
let nc: NatsConnection;
let metadata: MetadataStore;
let stores: ControlStores;
let agent: AgentHandle;
let server: ControlServer;
const host = new FakeHost();
const children: Child[] = [];
const dir = mkdtempSync(join(tmpdir(), "px-ctl-"));

const table = (name: string, shards: number) => ({ name, shards, columns: [{ name: "price", type: "float64" }] });

function controller(id: string): Child {
  const c = runTs("src/node/control/run-controller.ts", ["--nats", cluster.urls, "--id", id, "--replicas", "3", "--lease-ms", String(LEASE_MS), "--node-timeout-ms", "2000", "--reconcile-ms", "200"]);
  children.push(c);
  return c;
}

async function until(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await Promise.resolve().then(probe).catch(() => false)) return;
    if (Date.now() > deadline) {
      const logs = children.map((c) => `--- ${c.proc.spawnargs.slice(3, 7).join(" ")}\n${c.stderr().split("\n").slice(-15).join("\n")}`).join("\n");
      throw new Error(`timed out waiting for ${what}\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  cluster = await natsCluster(3);
  nc = await cluster.connect();
  metadata = await MetadataStore.open(nc, 3);
  await metadata.applyCurrent(parseClusterSpec({ tenants: [{ name: "acme", tables: [table("trades", 4)] }] }));
  stores = await openControlStores(nc, { replicas: 3 });
  agent = await startAgent(nc, { nodeId: "n1", address: "n1:8080", host, stores, heartbeatMs: 200, isolationMs: 10_000 });
  server = startControlServer(nc, controlBackend(metadata, stores));
});

afterAll(async () => {
  for (const c of children) {
    c.kill("SIGCONT");
    c.kill("SIGKILL");
  }
  await agent?.stop();
  await server?.stop();
  await cluster?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("control plane on a 3-server NATS cluster", () => {
  it("failover - a SIGSTOPped leader is replaced after its lease and fenced after SIGCONT", async () => {
    // Both start together (process start-up dominates the test time); whoever wins is "c1" below.
    const both = [controller("c1"), controller("c2")];
    // Generous: two tsx start-ups on a loaded machine.
    await Promise.all(both.map((c) => c.waitFor("ready", (e) => e.event === "ready", 45_000)));
    await until("a leader", () => both.some((c) => c.events().some((e) => e.event === "elected")));
    const c1 = both.find((c) => c.events().some((e) => e.event === "elected"))!;
    const c2 = both.find((c) => c !== c1)!;
    await until("shards started", () => host.running.size === 4);

    c1.kill("SIGSTOP");
    const stoppedAt = Date.now();
    const elected = await c2.waitFor("c2 elected", (e) => e.event === "elected", 10_000);
    expect(elected.term).toBe(2);
    // The lease runs from c1's last renewal (at most a renew period, LEASE/3, before the SIGSTOP), never less.
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(LEASE_MS - LEASE_MS / 3 - 100);
    // The new leader works while the old one sleeps: a new table gets placed under term 2.
    await metadata.applyCurrent(parseClusterSpec({ tenants: [{ name: "acme", tables: [table("trades", 4), table("quotes", 2)] }] }));
    await until("quotes placed", async () => (await stores.assignments.read()).get("acme.quotes.1")?.term === 2);
    const revisionBeforeWake = await stores.kv.assign.lastRevision();

    c1.kill("SIGCONT");
    const down = await c1.waitFor("c1 steps down", (e) => e.event === "steppedDown", 10_000);
    expect(String(down.reason)).toMatch(/expired|another controller/);
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS));
    expect(c1.events().filter((e) => e.event === "elected")).toHaveLength(1);
    const c2id = String(c2.events()[0]?.id);
    expect((await stores.lease.read())?.record).toMatchObject({ holder: c2id, term: 2 });
    expect(await stores.assignments.marker()).toMatchObject({ holder: c2id, term: 2 });
    // Nothing written to px_assign by anyone since: the old leader did not slip a write in.
    expect(await stores.kv.assign.lastRevision()).toBe(revisionBeforeWake);
    for (const a of (await stores.assignments.read()).values()) expect(a.term).toBeLessThanOrEqual(2);
    expect(host.running.size).toBe(6);
  });

  it("pxctl - two concurrent applies with conflicting specs: one wins, the other exits with the conflict code", async () => {
    await metadata.applyCurrent(parseClusterSpec({ tenants: [{ name: "acme", tables: [table("trades", 4), table("quotes", 2)] }] }));
    const files = ["a", "b"].map((v, i) => {
      const p = join(dir, `spec-${v}.yaml`);
      // Each raises quotes' maxBatchRows differently (a change that applies live; a shard count change is refused).
      writeFileSync(p, `tenants:\n  - name: acme\n    tables:\n      - name: trades\n        shards: 4\n        columns: [{name: price, type: float64}]\n      - name: quotes\n        shards: 2\n        maxBatchRows: ${3000 + i}\n        columns: [{name: price, type: float64}]\n`);
      return p;
    });
    const runs = files.map((file) => {
      const c = runTs("src/cli/pxctl.ts", ["--nats", cluster.urls, "apply", "-f", file, "--confirm"]);
      children.push(c);
      return c;
    });
    // Both have read the current spec and shown their diff; now both say yes at once.
    await Promise.all(runs.map((c) => c.waitOutput("the confirmation prompt", (_, err) => err.includes("[y/N]"))));
    for (const c of runs) expect(c.stdout()).toMatch(/~ table acme\.quotes: maxBatchRows \d+ -> 300[01]/);
    for (const c of runs) c.proc.stdin!.end("y\n");
    const codes = await Promise.all(runs.map((c) => c.exited));
    expect([...codes].sort(), runs.map((c) => c.stdout() + c.stderr()).join("\n---\n")).toEqual([EXIT.ok, EXIT.conflict]);
    const loser = runs[codes.indexOf(EXIT.conflict)]!;
    expect(loser.stderr()).toMatch(/conflict: tenant acme was changed by someone else/);
    const winner = codes.indexOf(EXIT.ok);
    expect((await metadata.tenants()).get("acme")!.spec.tables.find((t) => t.name === "quotes")!.maxBatchRows).toBe(3000 + winner);
  });

  it("nats - with one of three servers killed, KV writes and the leader keep working", async () => {
    const leaseBefore = (await stores.lease.read())!;
    cluster.servers[2]!.kill("SIGKILL");
    // Renewals continue (the lease revision moves) and the same or a new leader holds it.
    await until("lease renewed after the kill", async () => ((await stores.lease.read())?.revision ?? 0) > leaseBefore.revision + 3, 20_000);
    const lease = (await stores.lease.read())!;
    expect(["c1", "c2"]).toContain(lease.record.holder);
    // A stream whose Raft leader was on the dead server needs a few seconds to elect another.
    await until("spec applied", async () => {
      await metadata.applyCurrent(parseClusterSpec({ tenants: [{ name: "acme", tables: [table("trades", 4), table("quotes", 3), table("bars", 1)] }] }));
      return true;
    }, 20_000);
    await until("new table placed", async () => (await stores.assignments.read()).has("acme.bars.0"), 20_000);
    await until("new shard started", () => host.running.has("acme.bars.0"), 10_000);
    // pxctl reaches a node through the surviving servers (retried: reads wait out the same elections).
    let status: { leader: { holder: string } } | undefined;
    await until("pxctl status", async () => {
      const c = runTs("src/cli/pxctl.ts", ["--nats", cluster.servers.slice(0, 2).map((s) => s.url).join(","), "status", "-o", "json"]);
      if ((await c.exited) !== EXIT.ok) return false;
      status = JSON.parse(c.stdout()) as { leader: { holder: string } };
      return true;
    }, 20_000);
    expect(["c1", "c2"]).toContain(status!.leader.holder);
  });
});
