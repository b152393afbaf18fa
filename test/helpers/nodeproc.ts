// A Proxist node in its own process (`src/main.ts node`), for crash tests that
// SIGKILL it. Resolves once the node printed that it is up. With PX_FAILPOINTS
// in `env` the node runs from test/helpers/faultnode.ts, its IO wrapped with
// those faults (production code has none).
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { MALLOC_TUNABLES } from "../../src/config/defaults.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

export interface NodeProcess {
  readonly child: ChildProcess;
  /** Where its ports listen: 127.0.0.1, or its network namespace's address. */
  readonly host: string;
  readonly httpPort: number;
  /** The gRPC/Flight port, 0 when the node serves no API. */
  readonly grpcPort: number;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  /** Run inside this network namespace (`ip netns exec`, needs root), HTTP and gRPC on its address. */
  readonly netns?: { readonly name: string; readonly address: string };
  /** Libraries to preload (LD_PRELOAD; e.g. libfaketime for a clock offset). */
  readonly preload?: readonly string[];
}

/** The node's entry point: the suite's bundle when globalSetup built one (nodebundle.ts), else the source through tsx. */
function nodeEntry(faults: boolean): string[] {
  const bundle = process.env.PX_TEST_NODE_BUNDLE;
  if (bundle !== undefined && bundle !== "") return [join(bundle, faults ? "faultnode.mjs" : "main.mjs")];
  return ["--import", "tsx", faults ? "test/helpers/faultnode.ts" : "src/main.ts"];
}

export async function spawnNodeProcess(natsUrl: string, env: Record<string, string> = {}, args: string[] = [], o: SpawnOptions = {}): Promise<NodeProcess> {
  const host = o.netns?.address ?? "127.0.0.1";
  const argv = [process.execPath, ...nodeEntry(env.PX_FAILPOINTS !== undefined), "node", "--nats", natsUrl, "--http-port", "0", "--grpc-port", "0", ...args];
  // `ip netns exec` execs the node in place: the child's PID is the node's (SIGSTOP/SIGKILL reach it).
  const [cmd, ...rest] = o.netns ? ["ip", "netns", "exec", o.netns.name, ...argv] : argv;
  const child = spawn(cmd!, rest, {
    cwd: root,
    env: {
      GLIBC_TUNABLES: MALLOC_TUNABLES,
      ...process.env,
      ...(o.netns ? { PX_HTTP_HOST: host, PX_GRPC_HOST: host } : {}),
      ...(o.preload?.length ? { LD_PRELOAD: o.preload.join(":") } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
  // A node that never became ready must not outlive the test (it would own shards of later tests).
  const giveUp = async (e: Error): Promise<never> => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
    throw e;
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node process not up after 30 s:\n${out}`)), 30_000);
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (/: up \(nats/.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
    void exited.then(() => reject(new Error(`node process exited before it was up:\n${out}`)));
  }).catch(giveUp);
  const httpPort = Number(/http :(\d+)[,)]/.exec(out)?.[1] ?? 0);
  const grpcPort = Number(/grpc :(\d+)\)/.exec(out)?.[1] ?? 0);
  // "up" is printed before the catalog is loaded; ready means it serves the tenants.
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`http://${host}:${httpPort}/readyz`).then((r) => r.ok, () => false))) {
    if (Date.now() > deadline) await giveUp(new Error(`node process not ready after 30 s:\n${out}`));
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    host,
    httpPort,
    grpcPort,
    exited,
    output: () => out,
    kill: async (signal = "SIGKILL") => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}
