// Compose benchmark: the docker-compose.yml cluster on Podman with the local
// images (./proxist compose). Figures:
//   compose_up_cold_s            `compose up -d` from nothing: base image, three image builds, start, healthy
//                                (BENCH_SKIP_COLD=1 skips it: it deletes the images and the base tarball cache)
//   compose_up_warm_s            `compose up -d` with the images built (median of BENCH_RUNS)
//   compose_node_stop_to_live_s  `podman stop` of a shard-owning node until every shard is live on the other (median)
//   compose_ingest_ticks_per_s   the demo publisher's highest sustained acked rate in a container against the
//                                containers (rates in BENCH_RATES; sustained = acked >= 90% of the asked rate, the
//                                demo's 10 s progress reports being the measure)
//   compose_vs_host_ingest_ratio that rate over the same demo on the host against the same topology of host
//                                processes (3 NATS servers, 2 nodes, ClickHouse)
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { connect } from "@nats-io/transport-node";
import { controlRequest } from "../src/control/index.js";
import { natsCredsOptions } from "../src/runtime/natsclient.js";
import type { StatusView } from "../src/control/index.js";
import { DEFAULT_CLUSTER_SPEC } from "../protocols/tablespec.js";
import { startClickhouseServer } from "../src/runtime/servers/clickhouse.js";
import { proxistCluster } from "../test/helpers/nodecluster.js";
import { median, round, writeResult } from "./lib.js";

const root = fileURLToPath(new URL("..", import.meta.url));
// The stack's NATS is locked (operator JWT auth): `compose up` generates the identity under infra/secrets/.
const ADMIN_CREDS = join(root, "infra/secrets/nats-auth/admin.creds");
const DEMO_CREDS = join(root, "infra/secrets/nats_demo.creds");
// The stack speaks TLS only; its CA (made by compose up with the other secrets).
const CA = join(root, "infra/secrets/tls_ca.crt");
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const RATES = (process.env.BENCH_RATES ?? "2000,5000,10000,20000,40000").split(",").map(Number);
// Long enough for the demo to start (~10 s in a container here) and report twice, 10 s apart.
const STEP_S = Number(process.env.BENCH_STEP_S ?? 50);
const log = (s: string): void => console.error(s);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function sh(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): void {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, PX_SKIP_SETUP: "1", ...env } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}`);
}
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
  const t0 = performance.now();
  sh(cmd, args, env);
  return (performance.now() - t0) / 1000;
}
const podman = (...args: string[]): void => void spawnSync("podman", args, { stdio: "ignore" });

async function status(): Promise<StatusView> {
  const nc = await connect({ servers: "tls://127.0.0.1:4222", maxReconnectAttempts: 0, tls: { caFile: CA }, ...natsCredsOptions(ADMIN_CREDS) });
  try {
    return await controlRequest<StatusView>(nc, "status", {});
  } finally {
    await nc.close();
  }
}

async function allLive(on?: string): Promise<number> {
  for (;;) {
    const s = await status().catch(() => undefined);
    if (s && s.shards.length > 0 && s.shards.every((sh) => sh.state === "running.live" && (on === undefined || sh.owner === on))) return performance.now();
    await sleep(100);
  }
}

/** Runs the demo for STEP_S seconds at each rate; returns acked ticks/s per rate from its 10 s reports. */
async function demoRates(command: (rate: number) => [string, string[]]): Promise<{ rate: number; acked: number }[]> {
  const out: { rate: number; acked: number }[] = [];
  for (const rate of RATES) {
    const [cmd, args] = command(rate);
    const child = spawn(cmd, args, { cwd: root, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, PX_SKIP_SETUP: "1" } });
    const reports: [number, number][] = [];
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      for (const m of d.matchAll(/demo: (\d+) ticks acknowledged so far/g)) reports.push([performance.now(), Number(m[1])]);
    });
    await sleep(STEP_S * 1000);
    child.kill("SIGTERM");
    await new Promise((r) => child.once("exit", r));
    // Between the first and the last report: the publisher's warm-up is left out.
    const [a, b] = [reports[0], reports.at(-1)];
    const acked = a && b && b[0] > a[0] ? (b[1] - a[1]) / ((b[0] - a[0]) / 1000) : 0;
    if (reports.length < 2) log(`  demo at ${rate}/s reported ${reports.length} time(s) in ${STEP_S} s: raise BENCH_STEP_S`);
    log(`  demo at ${rate}/s: ${Math.round(acked)} acked ticks/s`);
    out.push({ rate, acked: Math.round(acked) });
  }
  return out;
}
const sustained = (steps: { rate: number; acked: number }[]): number => Math.max(0, ...steps.filter((s) => s.acked >= 0.9 * s.rate).map((s) => s.acked));

async function hostIngest(): Promise<{ rate: number; acked: number }[]> {
  const chDir = mkdtempSync(join(tmpdir(), "px-bench-ch-"));
  const ch = await startClickhouseServer({ dir: chDir });
  const c = await proxistCluster(DEFAULT_CLUSTER_SPEC, { PX_CLICKHOUSE_URL: ch.httpUrl });
  try {
    await c.spawn(["h1", "h2"]);
    await sleep(5_000);
    log(`host: 3 NATS servers, 2 nodes, ClickHouse ${ch.httpUrl}`);
    return await demoRates((rate) => ["node", ["--import", "tsx", "src/main.ts", "demo", "--nats", c.nats.urls, "--rate", String(rate)]]);
  } finally {
    await c.close();
    await ch.stop();
    rmSync(chDir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  sh("./proxist", ["compose", "down", "-v"]);
  let cold = Number.NaN;
  if (process.env.BENCH_SKIP_COLD !== "1") {
    // From nothing: no images, no base, an empty tarball cache.
    podman("rmi", "-f", "localhost/proxist:local", "localhost/proxist-nats:local", "localhost/proxist-clickhouse:local", "localhost/proxist-base:bookworm");
    podman("image", "prune", "-f");
    const cache = mkdtempSync(join(tmpdir(), "px-bench-cache-"));
    cold = timed("./proxist", ["compose", "up", "-d"], { PX_COMPOSE_CACHE: cache });
    rmSync(cache, { recursive: true, force: true });
    log(`cold up: ${cold.toFixed(1)} s`);
    sh("./proxist", ["compose", "down", "-v"]);
  }
  const warm: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    warm.push(timed("./proxist", ["compose", "up", "-d"]));
    log(`warm up ${i + 1}: ${warm.at(-1)!.toFixed(1)} s`);
    if (i < RUNS - 1) sh("./proxist", ["compose", "down", "-v"]);
  }
  // The stack is up (without the demo): failover under the demo's load.
  sh("./proxist", ["compose", "up", "-d", "--demo"]);
  await allLive();
  const toLive: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const s = await status();
    const victim = s.shards.some((sh) => sh.owner === "proxist-2") ? "proxist-2" : "proxist-1";
    const survivor = victim === "proxist-1" ? "proxist-2" : "proxist-1";
    const t0 = performance.now();
    podman("stop", "-t", "10", `proxist_${victim}_1`);
    toLive.push(((await allLive(survivor)) - t0) / 1000);
    log(`stop ${victim}: shards live on ${survivor} after ${toLive.at(-1)!.toFixed(2)} s`);
    podman("start", `proxist_${victim}_1`);
    await sleep(15_000);
    await allLive();
  }
  podman("stop", "-t", "10", "proxist_demo_1");
  log("containers: the demo in a container of the compose network against the containers");
  const inPodman = await demoRates((rate) => ["podman", ["run", "--rm", "--network", "proxist_default", "-e", "PX_NATS_URL=tls://nats-3:4222", "-v", `${DEMO_CREDS}:/run/secrets/nats_demo_creds:ro`, "-v", `${CA}:/run/secrets/tls_ca:ro`, "-e", "PX_TLS_CA=/run/secrets/tls_ca", "-e", "PX_NATS_CREDS=/run/secrets/nats_demo_creds", "localhost/proxist:local", "demo", "--rate", String(rate)]]);
  sh("./proxist", ["compose", "down", "-v"]);
  const onHost = await hostIngest();
  const c = sustained(inPodman);
  const h = sustained(onHost);
  writeResult(
    "compose",
    {
      compose_up_cold_s: round(cold, 1),
      compose_up_warm_s: round(median(warm), 1),
      compose_node_stop_to_live_s: round(median(toLive), 2),
      compose_ingest_ticks_per_s: c,
      compose_vs_host_ingest_ratio: h > 0 ? round(c / h, 2) : Number.NaN,
    },
    { runs: { warm_up_s: warm.map((x) => round(x, 1)), stop_to_live_s: toLive.map((x) => round(x, 2)), demo_in_podman: inPodman, demo_on_host: onHost, host_ingest_ticks_per_s: h } },
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    spawnSync("./proxist", ["compose", "down", "-v"], { cwd: root, stdio: "inherit", env: { ...process.env, PX_SKIP_SETUP: "1" } });
    process.exit(1);
  },
);
