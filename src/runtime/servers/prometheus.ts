// Launches a real Prometheus (Debian's `prometheus` package) on a free loopback
// port with a temp data dir, scraping the given targets: used by the
// observability integration tests. Also the PromQL client they query it with.
// The handle stops the server by PID.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { spawnLogged, stopProcess, waitUntil } from "./process.js";

export interface PrometheusOptions {
  /** host:port of each Proxist node's HTTP server (job "proxist"). */
  readonly targets: readonly string[];
  readonly scrapeIntervalSeconds?: number;
  /** Rule files (absolute paths) to load and evaluate. */
  readonly ruleFiles?: readonly string[];
}

export interface PrometheusServer {
  readonly url: string;
  readonly dir: string;
  /** An instant query; rejects with Prometheus' own error text when the expression is invalid. */
  query(expr: string): Promise<PromSample[]>;
  /** The rule groups as /api/v1/rules reports them (health, lastError per rule). */
  rules(): Promise<PromRuleGroup[]>;
  stop(): Promise<void>;
}

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

export interface PromRuleGroup {
  readonly name: string;
  readonly rules: readonly { readonly name: string; readonly query: string; readonly health: string; readonly lastError?: string; readonly type: string }[];
}

export function findBinary(name: "prometheus" | "promtool"): string {
  try {
    return execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(`${name} is not installed; run \`bash scripts/setup.sh\` (it installs Debian's prometheus package with apt-get) or apt-get install prometheus`);
  }
}

export async function startPrometheus(o: PrometheusOptions): Promise<PrometheusServer> {
  const bin = findBinary("prometheus");
  const dir = mkdtempSync(join(tmpdir(), "px-prom-"));
  const port = await freePort();
  const interval = `${o.scrapeIntervalSeconds ?? 1}s`;
  const config = [
    "global:",
    `  scrape_interval: ${interval}`,
    `  evaluation_interval: ${interval}`,
    ...(o.ruleFiles?.length ? ["rule_files:", ...o.ruleFiles.map((f) => `  - ${JSON.stringify(f)}`)] : []),
    "scrape_configs:",
    "  - job_name: proxist",
    "    static_configs:",
    `      - targets: [${o.targets.map((t) => JSON.stringify(t)).join(", ")}]`,
  ].join("\n");
  writeFileSync(join(dir, "prometheus.yml"), config + "\n");
  const proc = spawnLogged(
    bin,
    [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${port}`, "--log.level=warn"],
    join(dir, "prometheus.log"),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(`prometheus on port ${port} (log: ${join(dir, "prometheus.log")})`, async () => (await fetch(`${url}/-/ready`)).ok, proc, 60_000);
  const api = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data: T; error?: string; errorType?: string };
    if (body.status !== "success") throw new Error(`prometheus ${path}: ${body.errorType ?? "error"}: ${body.error ?? res.statusText}`);
    return body.data;
  };
  return {
    url,
    dir,
    query: async (expr) => {
      const data = await api<{ resultType: string; result: unknown }>(`/api/v1/query?query=${encodeURIComponent(expr)}`);
      if (data.resultType === "scalar") return [{ metric: {}, value: Number((data.result as [number, string])[1]) }];
      if (data.resultType !== "vector") return [];
      return (data.result as { metric: Record<string, string>; value: [number, string] }[]).map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
    },
    rules: async () => (await api<{ groups: PromRuleGroup[] }>("/api/v1/rules")).groups,
    stop: () => stopProcess(proc),
  };
}
