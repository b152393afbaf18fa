// pxctl operations commands: `compact [shard...] [--dry-run]`, `snapshot
// [shard...]` (requests every node answers for the shards it hosts, gathered
// for a few seconds), `drain node NODE` (the node hands its shards away; pxctl
// follows the move in the cluster status), `move shard TABLE/SHARD [--to NODE]
// [--clear]` (one shard to another node, followed the same way), `events [--last N]` (the
// operations event log read from PX_EVENTS) and `shard skip-record` (go on past
// a WAL record that does not decode, src/node/skiprecord.ts). Parsed here, apart from the other commands: runPxctl hands
// over any argv whose command is one of these.
import { parseArgs } from "node:util";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { ENV } from "../config/defaults.js";
import { readEvents } from "../wal/index.js";
import type { OpsEvent } from "../wal/index.js";
import type { OpsReply } from "../node/opsctl.js";
import { runDrain } from "./drain.js";
import { parseShardArg, runMove } from "./move.js";
import { opsRequest } from "./opsrequest.js";
import { DEFAULT_NATS_URL } from "./args.js";
import type { Invocation, OutputFormat } from "./args.js";
import { CliError, EXIT } from "./exitcodes.js";
import { structured } from "./render.js";

export const OPS_COMMANDS = ["compact", "snapshot", "drain", "move", "events", "shard"] as const;
export type OpsCommandName = (typeof OPS_COMMANDS)[number];

export interface OpsCommand {
  readonly name: OpsCommandName;
  /** Shard keys or prefixes: tenant, tenant.table, tenant.table.bucket (none: every shard). */
  readonly shards: readonly string[];
  readonly dryRun: boolean;
  readonly last: number;
  /** How long replies are gathered (every node answers for its own shards); drain: how long its shards may take to move. */
  readonly waitMs: number;
  /** drain: the node to empty. */
  readonly node?: string;
  /** move: the shard, its target (none: the live node with the fewest shards) or clear. */
  readonly move?: { readonly table: string; readonly bucket: number; readonly to?: string; readonly clear: boolean };
  /** `shard skip-record`: the shard (tenant.table.bucket), the record's LSN and the reason (audit). */
  readonly skip?: { readonly shard: string; readonly lsn: number; readonly reason: string };
}

export const OPS_USAGE = `Operations (pxctl <command> --help):
  compact [SHARD...] [--dry-run]         purge WAL records no reader needs (SHARD = tenant[.table[.bucket]]);
                                         --dry-run shows each shard's cut and which reader holds it
  snapshot [SHARD...]                    write the shards' snapshots now
  drain node NODE [--wait 60000]         move NODE's shards to the other nodes before maintenance, showing
                                         progress until each is live elsewhere (--shards assigned clusters)
  move shard TABLE/SHARD [--to NODE] [--wait 60000]
                                         move one shard (and its sink) to NODE, default the live node with
                                         the fewest shards, showing progress until it is live there; it
                                         stays there until --clear (or NODE dies)
  move shard TABLE/SHARD --clear         drop the shard's placement override (TABLE: table or tenant.table)
  events [--last N]                      what the operations workflows did (default the last 50)
  shard skip-record --tenant T --table X --bucket N --lsn L [--reason TEXT]
                                         go on past a WAL record the shard cannot decode (its rows are lost;
                                         refused for a record that decodes); recorded in events`;

const SHARD_RE = /^[a-z][a-z0-9_]{0,31}(\.[A-Za-z_][A-Za-z0-9_]*(\.\d+)?)?$/;

/** Undefined when argv's command is not an operations command. */
export function parseOpsArgs(argv: readonly string[], env: Readonly<Record<string, string | undefined>>): { inv: Invocation; ops: OpsCommand } | undefined {
  const options = {
    nats: { type: "string" },
    creds: { type: "string" },
    "auth-dir": { type: "string" },
    "tls-ca": { type: "string" },
    output: { type: "string", short: "o", default: "table" },
    timeout: { type: "string", default: "5000" },
    "dry-run": { type: "boolean", default: false },
    last: { type: "string", default: "50" },
    wait: { type: "string" },
    to: { type: "string" },
    clear: { type: "boolean", default: false },
    tenant: { type: "string" },
    table: { type: "string" },
    bucket: { type: "string" },
    lsn: { type: "string" },
    reason: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  } as const;
  // The command is the first positional once flag values are set apart (`-o json snapshot`).
  const first = parseArgs({ args: [...argv], allowPositionals: true, strict: false, options }).positionals[0];
  if (first === undefined || !(OPS_COMMANDS as readonly string[]).includes(first)) return undefined;
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options,
    });
  } catch (e) {
    throw new CliError(EXIT.usage, `${(e as Error).message}\n${OPS_USAGE}`);
  }
  const v = parsed.values;
  const [name, ...rest] = parsed.positionals as [OpsCommandName, ...string[]];
  let node: string | undefined;
  let shards = rest;
  if (name === "drain") {
    if (rest[0] !== "node" || rest.length !== 2) throw new CliError(EXIT.usage, `drain: give the node to empty, as drain node NODE (pxctl get nodes lists them)`);
    node = rest[1]!;
    shards = [];
  }
  let move: OpsCommand["move"];
  if (name === "move") {
    if (rest[0] !== "shard" || rest.length !== 2) throw new CliError(EXIT.usage, `move: give the shard to move, as move shard <table>/<shard> [--to NODE] (pxctl get shards lists them)`);
    if (v.clear && v.to !== undefined) throw new CliError(EXIT.usage, `move shard: --clear drops the shard's override and takes no --to`);
    move = { ...parseShardArg(rest[1]!), ...(v.to === undefined ? {} : { to: v.to }), clear: v.clear };
    shards = [];
  } else if (v.to !== undefined || v.clear) throw new CliError(EXIT.usage, `--to and --clear are for move shard only`);
  if (name === "shard") shards = [];
  for (const s of shards) if (!SHARD_RE.test(s)) throw new CliError(EXIT.usage, `${name} ${s}: a shard is tenant, tenant.table or tenant.table.bucket (e.g. default.trades.0)`);
  if (name === "events" && shards.length > 0) throw new CliError(EXIT.usage, `events takes no shard (it lists every recorded event); use --last N`);
  if (name !== "compact" && v["dry-run"]) throw new CliError(EXIT.usage, `--dry-run is for compact only`);
  const num = (flag: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new CliError(EXIT.usage, `--${flag} ${text}: expected a whole number of at least ${min}`);
    return n;
  };
  const output = v.output as OutputFormat;
  if (!["table", "json", "yaml"].includes(output)) throw new CliError(EXIT.usage, `-o ${output}: use table, json or yaml`);
  const creds = v.creds ?? env.PX_NATS_CREDS;
  const authDir = v["auth-dir"] ?? env.PX_AUTH_DIR;
  const tlsCa = v["tls-ca"] ?? env[ENV.tlsCa];
  const inv: Invocation = {
    command: { kind: "help" },
    natsUrl: v.nats ?? env[ENV.natsUrl] ?? DEFAULT_NATS_URL,
    output,
    timeoutMs: num("timeout", v.timeout, 1),
    ...(creds === undefined ? {} : { natsCreds: creds }),
    ...(authDir === undefined ? {} : { authDir }),
    ...(tlsCa === undefined ? {} : { tlsCa }),
  };
  let skip: OpsCommand["skip"];
  if (name === "shard") {
    if (rest.length !== 1 || rest[0] !== "skip-record") throw new CliError(EXIT.usage, `shard ${rest.join(" ")}: the shard command is "shard skip-record --tenant T --table X --bucket N --lsn L [--reason TEXT]"`);
    const need = (flag: "tenant" | "table" | "bucket" | "lsn"): string => {
      const value = v[flag];
      if (value === undefined || value === "") throw new CliError(EXIT.usage, `shard skip-record needs --${flag}; e.g. pxctl shard skip-record --tenant default --table trades --bucket 0 --lsn 1234 --reason "corrupt record"`);
      return value;
    };
    const key = `${need("tenant")}.${need("table")}.${num("bucket", need("bucket"), 0)}`;
    if (!SHARD_RE.test(key)) throw new CliError(EXIT.usage, `shard skip-record: ${key} is not a shard (tenant and table names are lowercase letters, digits and _)`);
    skip = { shard: key, lsn: num("lsn", need("lsn"), 1), reason: v.reason ?? "" };
  } else {
    for (const flag of ["tenant", "table", "bucket", "lsn", "reason"] as const) if (v[flag] !== undefined) throw new CliError(EXIT.usage, `--${flag} is for shard skip-record only`);
  }
  const waitMs = num("wait", v.wait ?? (name === "drain" || name === "move" ? "60000" : "3000"), 100);
  return {
    inv,
    ops: { name, shards, dryRun: v["dry-run"], last: num("last", v.last, 1), waitMs, ...(node === undefined ? {} : { node }), ...(skip === undefined ? {} : { skip }), ...(move === undefined ? {} : { move }) },
  };
}

function repliesText(replies: readonly OpsReply[]): string {
  const lines: string[] = [];
  for (const r of replies) {
    if (r.error !== undefined) lines.push(`${r.node}: ERROR ${r.error}`);
    for (const l of r.lines) lines.push(`${r.node}  ${l.ok ? "" : "FAILED "}${l.shard}  ${l.message}`);
  }
  return lines.length === 0 ? "no node hosts a matching shard" : lines.join("\n");
}

const eventsText = (events: readonly OpsEvent[]): string =>
  events.length === 0 ? "no events recorded yet" : events.map((e) => `${new Date(e.atMs).toISOString()}  ${e.node}  ${e.kind}  ${e.message}`).join("\n");

export async function runOps(ops: OpsCommand, output: OutputFormat, nc: NatsConnection, stdout: (text: string) => void): Promise<number> {
  const print = (value: unknown, human: () => string): void => stdout(output === "table" ? human() : structured(value, output));
  if (ops.name === "events") {
    const events = await readEvents(await jetstreamManager(nc), jetstream(nc), ops.last);
    print(events, () => eventsText(events));
    return EXIT.ok;
  }
  if (ops.name === "drain") return runDrain(nc, ops.node!, ops.waitMs, output, stdout);
  if (ops.name === "move") {
    const m = ops.move!;
    return runMove(nc, { table: m.table, bucket: m.bucket, by: "operator", ...(m.to === undefined ? {} : { to: m.to }), ...(m.clear ? { clear: true } : {}) }, ops.waitMs, output, stdout);
  }
  if (ops.name === "shard") {
    const skip = ops.skip!;
    const replies = await opsRequest(nc, "skip-record", { shards: [skip.shard], lsn: skip.lsn, reason: skip.reason }, ops.waitMs);
    if (!replies.some((r) => r.lines.length > 0 || r.error !== undefined)) throw new CliError(EXIT.other, `no node hosts shard ${skip.shard} (${replies.length} answered within ${ops.waitMs} ms); check the shard with pxctl status`);
    const answered = replies.filter((r) => r.lines.length > 0 || r.error !== undefined);
    print(answered, () => repliesText(answered));
    return answered.some((r) => r.error !== undefined || r.lines.some((l) => !l.ok)) ? EXIT.other : EXIT.ok;
  }
  const body = ops.name === "compact" ? { shards: ops.shards, dryRun: ops.dryRun } : { shards: ops.shards };
  const replies = await opsRequest(nc, ops.name, body, ops.waitMs);
  if (replies.length === 0) throw new CliError(EXIT.unreachable, `no node answered ${ops.name} within ${ops.waitMs} ms; is a node running (proxist up)?`);
  print(replies, () => repliesText(replies));
  return replies.some((r) => r.error !== undefined || r.lines.some((l) => !l.ok)) ? EXIT.other : EXIT.ok;
}
