// pxctl command line -> a Command (pure). Global flags may appear anywhere.
import { parseArgs } from "node:util";
import { DESCRIBE_KINDS, GET_KINDS } from "../control/index.js";
import type { DescribeKind, GetKind } from "../control/index.js";
import { DEFAULT_PORTS, ENV } from "../config/defaults.js";
import { CliError, EXIT } from "./exitcodes.js";
import { NATS_ROLES } from "../../protocols/index.js";
import type { NatsRole } from "../../protocols/index.js";

export type OutputFormat = "table" | "json" | "yaml";
export const TOKEN_ROLES = ["reader", "writer", "admin"] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

export type Command =
  | { readonly kind: "help" }
  | { readonly kind: "status"; readonly metrics?: { readonly urls: readonly string[]; readonly intervalSeconds: number } }
  | { readonly kind: "get"; readonly what: GetKind }
  | { readonly kind: "describe"; readonly what: DescribeKind; readonly name: string }
  | { readonly kind: "apply"; readonly file: string; readonly dryRun: boolean; readonly confirm: boolean }
  | { readonly kind: "token.create"; readonly tenant: string; readonly role: TokenRole; readonly ttlSeconds: number | undefined; readonly note: string | undefined; readonly tables: readonly string[] | undefined }
  | { readonly kind: "token.revoke"; readonly id: string }
  | { readonly kind: "token.list"; readonly tenant: string | undefined }
  | { readonly kind: "creds.create"; readonly tenant: string | undefined; readonly role: NatsRole; readonly ttlSeconds: number | undefined; readonly out: string | undefined; readonly note: string | undefined; readonly tables: readonly string[] | undefined }
  | { readonly kind: "creds.revoke"; readonly id: string }
  | { readonly kind: "creds.list"; readonly tenant: string | undefined }
  /** Scrapes the nodes' /metrics directly. */
  | { readonly kind: "top"; readonly urls: readonly string[]; readonly intervalSeconds: number; readonly once: boolean }
  /** Writes a CA and server/client certificates with openssl (no network). */
  | { readonly kind: "certs.init"; readonly dir: string | undefined; readonly hosts: readonly string[]; readonly days: number | undefined }
  /** Reads ClickHouse px_system.query_log directly (not a control message). */
  | { readonly kind: "queries.slow"; readonly sinceSeconds: number; readonly tenant: string | undefined; readonly clickhouseUrl: string };

export interface Invocation {
  readonly command: Command;
  readonly natsUrl: string;
  readonly output: OutputFormat;
  readonly timeoutMs: number;
  /** The `.creds` file to connect with (--creds, $PX_NATS_CREDS); else admin.creds of the auth dir when it exists. */
  readonly natsCreds?: string;
  /** --auth-dir, $PX_AUTH_DIR: the deployment's NATS identity (creds create/revoke need it). */
  readonly authDir?: string;
  /** --tls-ca, $PX_TLS_CA: the CA certificate of a NATS that speaks TLS. */
  readonly tlsCa?: string;
}

export const DEFAULT_NATS_URL = `nats://127.0.0.1:${DEFAULT_PORTS.nats}`;

export const USAGE = `pxctl: operate a Proxist cluster (commands travel as control messages over NATS)

Usage: pxctl [--nats URL] [-o table|json|yaml] <command>

Commands:
  status [--metrics URL[,URL]] [--interval 1s]
                                         leader, nodes (heartbeat age), shards (owner, state, LSNs, lag);
                                         with --metrics also rates, lag and latency from each node's /metrics
  get tenants|tables|shards|nodes        list
  describe shard|table|node|tenant NAME  details of one (shard NAME = <tenant>.<table>.<bucket>)
  apply -f spec.yaml [--dry-run] [--confirm]
                                         validate, show the diff, apply with compare-and-set
                                         (--confirm asks before applying)
  token create --tenant T --role reader|writer|admin [--tables A,B] [--ttl 24h|never] [--note TEXT]
                                         prints the token once (only a hash is stored)
  token list [--tenant T]
  token revoke ID
  top [--metrics URL[,URL]] [--interval 2s] [--once]
                                         refreshing view of the nodes' /metrics: rates, lag, latency per shard
                                         (default $PX_METRICS_URLS or http://127.0.0.1:8080/metrics)
  creds create --tenant T --role publisher|subscriber [--tables A,B] [--ttl 30d|never] [--out FILE] [--note TEXT]
  creds create --role service|admin [--ttl ...] [--out FILE]
                                         writes a NATS .creds file (mode 0600); only its public key is recorded
  creds list [--tenant T]
  creds revoke ID                        nats-server disconnects and refuses that user
  certs init [--dir DIR] [--hosts NAME[,NAME...]] [--days N]
                                         a CA and server/client certificates for TLS (openssl; keys 0600)
                                         in DIR (default $PX_DATA_DIR/tls or .data/tls); --hosts: names and
                                         addresses clients use, besides localhost, 127.0.0.1 and this host
  query "SQL or JSON" [--url URL] [--token T] [-o table|json|csv|arrow] [--watch 2s]
                                         runs a query over a node's HTTP API (POST /v1/query)
  sql [--url URL] [--token T]            interactive SQL prompt with history
  queries --slow [--since 1h] [--tenant T] [--clickhouse URL]
                                         slow queries from ClickHouse px_system.query_log, newest first
                                         (ClickHouse default $${ENV.clickhouseUrl} or http://127.0.0.1:8123)

Options:
  --nats URL        NATS server(s), comma separated (default $${ENV.natsUrl} or ${DEFAULT_NATS_URL})
  --creds FILE      NATS credentials (default $PX_NATS_CREDS, else admin.creds in the auth dir)
  --auth-dir DIR    the NATS identity (default $PX_AUTH_DIR, else $PX_DATA_DIR/auth or .data/auth)
  --tls-ca FILE     CA certificate of a NATS with TLS (default $PX_TLS_CA; proxist up --tls prints it)
  -o, --output FMT  table (default), json or yaml
  --timeout MS      request timeout (default 5000)

Exit status: 0 ok, 1 error, 2 usage or invalid input, 3 unreachable, 4 conflict, 5 not found`;

const usage = (msg: string): never => {
  throw new CliError(EXIT.usage, `${msg}\nRun pxctl --help for usage.`);
};

/** "24h", "30m", "7d", "90s" or plain seconds; "never": no expiry (undefined). */
export function parseTtl(s: string): number | undefined {
  if (s.trim() === "never") return undefined;
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  if (!m) return usage(`--ttl ${s}: use a number with s, m, h or d (e.g. 24h)`);
  const n = Number(m[1]);
  const mult = { "": 1, s: 1, m: 60, h: 3_600, d: 86_400 }[m[2] as "" | "s" | "m" | "h" | "d"];
  if (n <= 0) return usage(`--ttl ${s}: must be more than 0`);
  return n * mult;
}

/** A comma-separated list of /metrics URLs (empty when none is given). */
const metricsUrls = (list: string | undefined): string[] => (list ?? "").split(",").map((u) => u.trim()).filter((u) => u !== "");

function pick<T extends string>(what: string, v: string | undefined, allowed: readonly T[]): T {
  if (v === undefined) return usage(`${what}: say which (${allowed.join("|")})`);
  if (!(allowed as readonly string[]).includes(v)) return usage(`${what}: ${v} is not one of ${allowed.join(", ")}`);
  return v as T;
}

export function parsePxctlArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>> = {}): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        nats: { type: "string" },
        creds: { type: "string" },
        "auth-dir": { type: "string" },
        "tls-ca": { type: "string" },
        dir: { type: "string" },
        hosts: { type: "string" },
        days: { type: "string" },
        out: { type: "string" },
        output: { type: "string", short: "o", default: "table" },
        timeout: { type: "string", default: "5000" },
        file: { type: "string", short: "f" },
        "dry-run": { type: "boolean", default: false },
        confirm: { type: "boolean", default: false },
        tenant: { type: "string" },
        role: { type: "string" },
        ttl: { type: "string", default: "24h" },
        note: { type: "string" },
        tables: { type: "string" },
        slow: { type: "boolean", default: false },
        since: { type: "string", default: "1h" },
        clickhouse: { type: "string" },
        metrics: { type: "string" },
        interval: { type: "string", default: "2s" },
        once: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    return usage((e as Error).message);
  }
  const { values: v, positionals: p } = parsed;
  const output = pick("-o", v.output, ["table", "json", "yaml"] as const);
  const timeoutMs = Number(v.timeout);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) usage(`--timeout ${v.timeout}: give milliseconds, e.g. 5000`);
  const natsUrl = v.nats ?? env[ENV.natsUrl] ?? DEFAULT_NATS_URL;
  const at = (i: number): string | undefined => p[i];
  const extra = (n: number): void => {
    if (p.length > n) usage(`unexpected argument ${p[n]}`);
  };
  let command: Command;
  if (v.help || p.length === 0 || at(0) === "help") command = { kind: "help" };
  else {
    switch (at(0)) {
      case "status": {
        extra(1);
        // With --metrics: the nodes' /metrics too (rates, lag, latency), the same figures `top` and Prometheus read.
        const urls = metricsUrls(v.metrics ?? env.PX_METRICS_URLS);
        const interval = parseTtl(v.interval ?? "1s") ?? usage("status --interval: give a duration such as 1s");
        command = urls.length === 0 ? { kind: "status" } : { kind: "status", metrics: { urls, intervalSeconds: interval } };
        break;
      }
      case "get":
        extra(2);
        command = { kind: "get", what: pick("get", at(1), GET_KINDS) };
        break;
      case "describe": {
        const what = pick("describe", at(1), DESCRIBE_KINDS);
        const name = at(2) ?? usage(`describe ${what}: name the ${what}`);
        extra(3);
        command = { kind: "describe", what, name };
        break;
      }
      case "apply":
        extra(1);
        command = { kind: "apply", file: v.file ?? usage("apply: give the spec file with -f spec.yaml"), dryRun: v["dry-run"] ?? false, confirm: v.confirm ?? false };
        break;
      case "token": {
        const sub = pick("token", at(1), ["create", "list", "revoke"] as const);
        if (sub === "create") {
          extra(2);
          command = {
            kind: "token.create",
            tenant: v.tenant ?? usage("token create: give --tenant"),
            role: pick("token create --role", v.role, TOKEN_ROLES),
            ttlSeconds: parseTtl(v.ttl ?? "24h"),
            note: v.note,
            tables: v.tables === undefined ? undefined : v.tables.split(",").map((t) => t.trim()),
          };
        } else if (sub === "list") {
          extra(2);
          command = { kind: "token.list", tenant: v.tenant };
        } else {
          const id = at(2) ?? usage("token revoke: give the token id");
          extra(3);
          command = { kind: "token.revoke", id };
        }
        break;
      }
      case "top": {
        extra(1);
        const urls = metricsUrls(v.metrics ?? env.PX_METRICS_URLS ?? "http://127.0.0.1:8080/metrics");
        if (urls.length === 0) usage("top --metrics: give each node's /metrics URL, comma separated");
        const interval = parseTtl(v.interval ?? "2s") ?? usage("top --interval: give a duration such as 2s");
        command = { kind: "top", urls, intervalSeconds: interval, once: v.once ?? false };
        break;
      }
      case "creds": {
        const sub = pick("creds", at(1), ["create", "list", "revoke"] as const);
        if (sub === "create") {
          extra(2);
          const role = pick("creds create --role", v.role, NATS_ROLES);
          const tenantRole = role === "publisher" || role === "subscriber";
          if (tenantRole && v.tenant === undefined) usage(`creds create --role ${role}: give --tenant`);
          if (!tenantRole && v.tenant !== undefined) usage(`creds create --role ${role}: a ${role} is not scoped to a tenant; drop --tenant`);
          if (v.tables !== undefined && !tenantRole) usage(`creds create --tables: table grants apply to publishers (ingest subjects) and subscribers (feeds and watermarks); a ${role} is not scoped to tables`);
          command = { kind: "creds.create", tenant: v.tenant, role, ttlSeconds: parseTtl(v.ttl ?? "24h"), out: v.out, note: v.note, tables: v.tables === undefined ? undefined : v.tables.split(",").map((t) => t.trim()) };
        } else if (sub === "list") {
          extra(2);
          command = { kind: "creds.list", tenant: v.tenant };
        } else {
          const id = at(2) ?? usage("creds revoke: give the credentials id (pxctl creds list)");
          extra(3);
          command = { kind: "creds.revoke", id };
        }
        break;
      }
      case "certs": {
        pick("certs", at(1), ["init"] as const);
        extra(2);
        const hosts = (v.hosts ?? "").split(",").map((h) => h.trim()).filter((h) => h !== "");
        const days = v.days === undefined ? undefined : Number(v.days);
        if (days !== undefined && !(Number.isInteger(days) && days > 0 && days <= 3650)) usage(`certs init --days ${v.days}: give a whole number of days, 1 to 3650`);
        command = { kind: "certs.init", dir: v.dir, hosts, days };
        break;
      }
      case "queries": {
        extra(1);
        if (v.slow !== true) usage("queries: only the slow-query log is kept; run pxctl queries --slow [--since 1h]");
        const since = parseTtl(v.since ?? "1h") ?? usage("queries --since: give a duration such as 1h or 30m");
        command = { kind: "queries.slow", sinceSeconds: since, tenant: v.tenant, clickhouseUrl: v.clickhouse ?? env[ENV.clickhouseUrl] ?? "http://127.0.0.1:8123" };
        break;
      }
      default:
        return usage(`unknown command ${at(0)}`);
    }
  }
  const natsCreds = v.creds ?? env.PX_NATS_CREDS;
  const authDir = v["auth-dir"] ?? env.PX_AUTH_DIR;
  const tlsCa = v["tls-ca"] ?? env[ENV.tlsCa];
  return { command, natsUrl, output, timeoutMs, ...(natsCreds ? { natsCreds } : {}), ...(authDir ? { authDir } : {}), ...(tlsCa ? { tlsCa } : {}) };
}
