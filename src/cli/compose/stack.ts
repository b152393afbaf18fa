// The compose stack, run by Docker Compose where a Docker engine answers, else
// by Podman (podman-compose for the containers, this file for what the Debian
// podman-compose 1.0.3 lacks: depends_on conditions, healthchecks without
// systemd, removing the network on down).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { ComposeError, buildLocalImages, ensureBaseImage, ensurePodman, healthy, ok, running, say, sh } from "./podman.js";
import { ensureComposeNatsAuth, ensureComposeSecrets, ensureComposeTls } from "./secrets.js";

export const PROJECT = process.env.PX_COMPOSE_PROJECT ?? "proxist";
export const DEMO_SERVICE = "demo";

export interface ComposeOptions {
  readonly root: string;
  /** docker or podman; found when not given. */
  readonly engine?: Engine;
  /** local: images built from infra/local on a Debian base; official: docker-compose.yml's own images. */
  readonly images?: "local" | "official";
}
export type Engine = "docker" | "podman";

interface Service {
  depends_on?: Record<string, { condition?: string }> | string[];
  healthcheck?: { test?: unknown; disable?: boolean; interval?: string; retries?: number; start_period?: string };
}

/** Docker where its engine answers (`docker info`), else Podman. PX_COMPOSE_ENGINE picks one. */
export function findEngine(): Engine {
  const forced = process.env.PX_COMPOSE_ENGINE;
  if (forced === "docker" || forced === "podman") return forced;
  if (forced) throw new ComposeError(`PX_COMPOSE_ENGINE must be docker or podman, got "${forced}"`);
  return ok("docker", ["info"]) && ok("docker", ["compose", "version"]) ? "docker" : "podman";
}

const imagesOf = (o: ComposeOptions, engine: Engine): "local" | "official" => o.images ?? (engine === "podman" ? "local" : "official");
export const composeFiles = (o: ComposeOptions, engine: Engine): string[] =>
  ["docker-compose.yml", ...(imagesOf(o, engine) === "local" ? ["infra/local/compose.yml"] : [])];
const fileArgs = (files: string[]): string[] => files.flatMap((f) => ["-f", f]);

function services(root: string): Record<string, Service> {
  return (parse(readFileSync(join(root, "docker-compose.yml"), "utf8"), { merge: true }) as { services: Record<string, Service> }).services;
}

const depsOf = (s: Service): [string, string][] =>
  Array.isArray(s.depends_on) ? s.depends_on.map((d) => [d, "service_started"]) : Object.entries(s.depends_on ?? {}).map(([d, c]) => [d, c.condition ?? "service_started"]);

/** Services in start order, grouped: a group depends only on earlier groups. */
export function startLevels(all: Record<string, Service>, wanted: string[]): string[][] {
  const levels: string[][] = [];
  const placed = new Set<string>();
  let left = wanted.slice();
  while (left.length > 0) {
    const ready = left.filter((n) => depsOf(all[n]!).every(([d]) => placed.has(d) || !wanted.includes(d)));
    if (ready.length === 0) throw new ComposeError(`depends_on has a cycle among ${left.join(", ")}`);
    levels.push(ready);
    for (const n of ready) placed.add(n);
    left = left.filter((n) => !placed.has(n));
  }
  return levels;
}

const containerOf = (service: string): string => `${PROJECT}_${service}_1`;
const seconds = (v: string | undefined, fallback: number): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(v ?? "");
  if (!m) return fallback;
  return Number(m[1]) * (m[2] === "ms" ? 0.001 : m[2] === "m" ? 60 : 1);
};

/** Waits for a depends_on condition by running the healthcheck ourselves (Podman without systemd runs none). */
async function waitCondition(all: Record<string, Service>, service: string, condition: string): Promise<void> {
  const hc = all[service]!.healthcheck;
  const wantHealthy = condition === "service_healthy" && hc?.test !== undefined && hc.disable !== true;
  const budget = wantHealthy ? seconds(hc.start_period, 0) + seconds(hc.interval, 5) * (hc.retries ?? 3) + 60 : 60;
  const until = Date.now() + budget * 1000;
  const c = containerOf(service);
  for (;;) {
    if (wantHealthy ? healthy(c) : running(c)) return;
    if (Date.now() > until) {
      throw new ComposeError(`${service} is not ${wantHealthy ? "healthy" : "running"} after ${Math.round(budget)} s; see podman logs ${c}`);
    }
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

function wantedServices(all: Record<string, Service>, demo: boolean): string[] {
  return Object.keys(all).filter((n) => demo || n !== DEMO_SERVICE);
}

/** Up in the background; resolves when every service's own healthcheck passes (docker compose up --wait). */
export async function up(o: ComposeOptions, demo: boolean, detach: boolean): Promise<void> {
  // ClickHouse's password (infra/secrets/, not in git): the compose file mounts it, so it must exist first.
  const secrets = ensureComposeSecrets(o.root);
  if (secrets.created) say(`generated ClickHouse's password in ${secrets.passwordFile} (user default; nodes read it as the compose secret clickhouse_password)`);
  // NATS runs locked (operator-mode JWT auth): its include and the containers' credentials must exist first too.
  const nats = await ensureComposeNatsAuth(o.root);
  say(`${nats.created ? "generated" : "kept"} the NATS identity; pxctl on this machine: PX_NATS_CREDS=${nats.adminCreds}`);
  const tls = ensureComposeTls(o.root);
  say(`${tls.created ? "generated" : "kept"} the stack's TLS (NATS, gRPC/Flight and HTTPS speak TLS only); clients trust PX_TLS_CA=${tls.ca}`);
  const engine = o.engine ?? findEngine();
  const files = composeFiles(o, engine);
  const all = services(o.root);
  const wanted = wantedServices(all, demo);
  say(`engine ${engine}, images ${imagesOf(o, engine)}, services ${wanted.join(" ")}`);
  if (engine === "docker") {
    if (imagesOf(o, engine) === "local") throw new ComposeError("--images local is built with Podman; with Docker use the official images (the default)");
    const args = ["compose", "-p", PROJECT, ...fileArgs(files), "up", "--build", ...(detach ? ["-d", "--wait"] : []), ...wanted];
    return runInherit("docker", args, o.root);
  }
  ensurePodman();
  if (imagesOf(o, engine) === "local") {
    ensureBaseImage();
    buildLocalImages(o.root);
  }
  const pc = ["-p", PROJECT, ...fileArgs(files)];
  for (const level of startLevels(all, wanted)) {
    for (const s of level) for (const [d, cond] of depsOf(all[s]!)) await waitCondition(all, d, cond);
    say(`starting ${level.join(" ")}`);
    // podman-compose also (re)runs the dependencies it names; they exist already, so it only starts them.
    sh("podman-compose", [...pc, "up", "-d", "--no-build", ...level], "podman-compose up failed", { quiet: true, env: { ...process.env, PYTHONUNBUFFERED: "1" } });
  }
  for (const s of wanted) await waitCondition(all, s, "service_healthy");
  say(`up: ${wanted.join(" ")} (healthy where they have a healthcheck)`);
  say(`reach it with TLS: PX_NATS_URL=tls://127.0.0.1:4222 PX_TLS_CA=${tls.ca} PX_NATS_CREDS=${nats.adminCreds} ./proxist pxctl status; gRPC/Flight grpc+tls://127.0.0.1:50051 and :50052; console https://127.0.0.1:8080/ and :8081/`);
  if (!detach) await followLogs(o, wanted);
}

/** Foreground: logs until Ctrl-C, then stops the containers (as `docker compose up` does). */
async function followLogs(o: ComposeOptions, wanted: string[]): Promise<void> {
  const child = spawn("podman", ["logs", "-f", "--names", ...wanted.map(containerOf)], { stdio: "inherit", cwd: o.root });
  await new Promise<void>((done) => {
    const stop = (): void => {
      say("stopping (containers and volumes stay; ./proxist compose down removes them)");
      spawnSync("podman", ["stop", "-t", "10", ...wanted.map(containerOf)], { stdio: "ignore" });
      child.kill();
      done();
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}

/** Down: containers and the network; -v: the named volumes too. Nothing of the project is left. */
export async function down(o: ComposeOptions, volumes: boolean): Promise<void> {
  const engine = o.engine ?? findEngine();
  const files = composeFiles(o, engine);
  // With -v the data goes too, so nothing is gained by waiting out each container's graceful stop (10 s each by default).
  const removal = volumes ? ["-v", "-t", "2"] : [];
  if (engine === "docker") return runInherit("docker", ["compose", "-p", PROJECT, ...fileArgs(files), "down", "--remove-orphans", ...removal], o.root);
  if (!ok("sh", ["-c", "command -v podman-compose"])) return;
  sh("podman-compose", ["-p", PROJECT, ...fileArgs(files), "down", ...removal], "podman-compose down failed", { quiet: true });
  // podman-compose 1.0.3 leaves the network, and containers it no longer lists (a service removed from the file).
  const leftover = sh("podman", ["ps", "-aq", "--filter", `label=io.podman.compose.project=${PROJECT}`], "", { quiet: true }).split("\n").filter(Boolean);
  if (leftover.length > 0) sh("podman", ["rm", "-f", ...leftover], "podman rm failed", { quiet: true });
  if (ok("podman", ["network", "exists", `${PROJECT}_default`])) sh("podman", ["network", "rm", `${PROJECT}_default`], "podman network rm failed", { quiet: true });
  say(`down: project ${PROJECT} removed${volumes ? " with its volumes" : " (volumes kept; -v removes them)"}`);
}

function runInherit(cmd: string, args: string[], cwd: string): Promise<void> {
  return new Promise((done, fail) => {
    const child = spawn(cmd, args, { stdio: "inherit", cwd });
    child.on("error", fail);
    child.on("exit", (code) => (code === 0 ? done() : fail(new ComposeError(`${cmd} ${args.join(" ")} exited ${code}`))));
  });
}
