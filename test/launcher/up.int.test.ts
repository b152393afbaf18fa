// `proxist up` after a crash (issue 21.1): the launcher records what it started in
// <data dir>/proxist-up.json and each server has a watchdog on the launcher's
// PID, so a SIGKILLed launcher leaves no orphans; a launcher that could not clean
// up (watchdogs switched off: the negative control) is cleaned up by the next
// `up` on the same data dir. Acked ticks survive both.
import { afterEach, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { TickPublisher } from "../../src/client/publisher.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { alive } from "../../src/runtime/servers/upstate.js";
import type { UpState } from "../../src/runtime/servers/upstate.js";
import { freeBasePort, startLauncher } from "./launcher.js";
import { runPxctl } from "../../src/cli/commands.js";
import { natsCredsOptions } from "../../src/runtime/natsclient.js";
import { hasClickhouseBinary } from "../../src/runtime/servers/clickhouse.js";
import type { Launcher } from "./launcher.js";

const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
const running: Launcher[] = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const l of running.splice(0)) await l.kill("SIGTERM");
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function until(what: string, probe: () => boolean | Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function up(dir: string, base: number, env: Record<string, string> = {}): Promise<Launcher> {
  const l = await startLauncher(["--data-dir", dir, "--base-port", String(base)], env);
  running.push(l);
  return l;
}

const stateOf = (dir: string): UpState => JSON.parse(readFileSync(join(dir, "proxist-up.json"), "utf8")) as UpState;

async function ingest(dir: string, base: number, rows: number): Promise<number> {
  // NATS runs locked: a tenant publisher's credentials, minted with pxctl as a user would.
  const creds = join(dir, "pub.creds");
  if (!existsSync(creds)) {
    const io = { stdout: () => {}, stderr: () => {}, readFile: async () => "", prompt: async () => "", env: { PX_DATA_DIR: dir } };
    expect(await runPxctl(["--nats", `nats://127.0.0.1:${base}`, "creds", "create", "--tenant", "default", "--role", "publisher", "--out", creds], io)).toBe(0);
  }
  const nc = await connect({ servers: `nats://127.0.0.1:${base}`, ...natsCredsOptions(creds) });
  try {
    const p = new TickPublisher(nc, { tenant: "default", spec: trades, timeoutMs: 10_000 });
    const ack = await p.publish(new RandomWalk(symbolNames(20), 1, Date.now() * 1000 - 60_000_000).trades(rows, 50_000_000));
    return ack.rows;
  } finally {
    await nc.close();
  }
}

async function hotRows(base: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${base + 4}/v1/shards`).catch(() => undefined);
  if (!res?.ok) return -1;
  const shards = (await res.json()) as { table: string; rows: number }[];
  return shards.filter((s) => s.table === "trades").reduce((n, s) => n + s.rows, 0);
}

describe("launcher - proxist up after a crash", () => {
  it("up - SIGKILL of the launcher: its servers die with it, the next up starts cleanly and acked ticks are there", async () => {
    const dir = mkdtempSync(join(tmpdir(), "px-up-"));
    dirs.push(dir);
    const base = await freeBasePort();
    const first = await up(dir, base);
    const state = stateOf(dir);
    expect(state.launcherPid).toBe(first.child.pid);
    expect(state.servers.map((s) => s.name)).toContain("nats-server");
    expect(state.servers.every((s) => alive(s.pid))).toBe(true);
    expect(await ingest(dir, base, 5_000)).toBe(5_000);

    if (hasClickhouseBinary()) {
      // pxctl's CLICKHOUSE column: the node's configured ClickHouse (issue 21.3).
      await until("the node's heartbeat with its ClickHouse", async () => {
        const out: string[] = [];
        await runPxctl(["--nats", `nats://127.0.0.1:${base}`, "get", "nodes", "-o", "json"], { stdout: (t) => out.push(t), stderr: () => {}, readFile: async () => "", prompt: async () => "", env: { PX_DATA_DIR: dir } });
        return out.join("").includes(`"clickhouse": "http://127.0.0.1:${base + 2}"`) || out.join("").includes(`"clickhouse":"http://127.0.0.1:${base + 2}"`);
      }, 30_000);
    }
    await first.kill("SIGKILL");
    // The watchdogs notice within a second or two and stop the servers.
    await until("the servers of the killed launcher to exit", () => state.servers.every((s) => !alive(s.pid)), 60_000);

    const second = await up(dir, base);
    expect(second.output()).not.toMatch(/already in use/);
    await until("the acked ticks in the hot set", async () => (await hotRows(base)) === 5_000);
    expect(stateOf(dir).launcherPid).toBe(second.child.pid);
    await second.kill("SIGTERM");
    expect(stateOf.bind(undefined, dir)).toThrow(); // a clean stop removes proxist-up.json
  }, 300_000);

  it("up - negative control: with the watchdogs off the servers outlive the launcher, and the next up stops them and says so", async () => {
    const dir = mkdtempSync(join(tmpdir(), "px-up-"));
    dirs.push(dir);
    const base = await freeBasePort();
    const first = await up(dir, base, { PX_UP_UNSAFE_NO_WATCHDOG: "1" });
    const state = stateOf(dir);
    expect(await ingest(dir, base, 3_000)).toBe(3_000);
    await first.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 3_000));
    // Orphans: exactly what the watchdog prevents.
    expect(state.servers.every((s) => alive(s.pid))).toBe(true);

    const second = await up(dir, base);
    for (const s of state.servers) {
      expect(alive(s.pid)).toBe(false);
      expect(second.output()).toContain(`its ${s.name} (pid ${s.pid}) still runs on ${dir}: stopping it`);
    }
    await until("the acked ticks in the hot set", async () => (await hotRows(base)) === 3_000);
  }, 300_000);

  it("up - a second up on a data dir whose launcher is alive is refused, naming the running launcher", async () => {
    const dir = mkdtempSync(join(tmpdir(), "px-up-"));
    dirs.push(dir);
    const base = await freeBasePort();
    const first = await up(dir, base, {});
    const other = await freeBasePort();
    await expect(startLauncher(["--data-dir", dir, "--base-port", String(other), "--no-clickhouse"], {}, 60_000)).rejects.toThrow(new RegExp(`another \`proxist up\` \\(pid ${first.child.pid}, .*is running on ${dir}`));
  }, 300_000);
});
