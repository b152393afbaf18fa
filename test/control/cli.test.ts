import { describe, expect, it } from "vitest";
import { initialTransition } from "xstate";
import { parsePxctlArgs, parseTtl } from "../../src/cli/args.js";
import { CliError, EXIT } from "../../src/cli/exitcodes.js";
import { shardsTable, table } from "../../src/cli/render.js";
import { ControlError, diffClusterSpec, formatDiff, handleControl, MetadataConflictError, shardViews } from "../../src/control/index.js";
import type { ClusterState, ControlBackend, StoredTenant } from "../../src/control/index.js";
import { shardStatus, shardStatusFromMessage, shardStatusToMessage } from "../../protocols/shardstatus.js";
import { ShardStatusSchema } from "../../protocols/gen/proxist/v1/control_pb.js";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import { controllerMachine } from "../../actors/controller.js";
import { heartbeat, tenant } from "./fakes.js";

const usageOf = (argv: string[]): string => {
  try {
    parsePxctlArgs(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe(EXIT.usage);
    return (e as Error).message;
  }
  throw new Error("expected a usage error");
};

describe("pxctl arguments", () => {
  it("pxctl args - commands, global flags anywhere, env default for NATS", () => {
    expect(parsePxctlArgs(["get", "nodes", "-o", "json"], { PX_NATS_URL: "nats://x:1" })).toEqual({ command: { kind: "get", what: "nodes" }, natsUrl: "nats://x:1", output: "json", timeoutMs: 5000 });
    expect(parsePxctlArgs(["--nats", "nats://y:2", "apply", "-f", "s.yaml", "--dry-run"]).command).toEqual({ kind: "apply", file: "s.yaml", dryRun: true, confirm: false });
    expect(parsePxctlArgs(["describe", "shard", "acme.trades.3"]).command).toEqual({ kind: "describe", what: "shard", name: "acme.trades.3" });
    expect(parsePxctlArgs(["token", "create", "--tenant", "acme", "--role", "writer", "--ttl", "7d"]).command).toMatchObject({ kind: "token.create", ttlSeconds: 7 * 86_400, tables: undefined });
    expect(parsePxctlArgs(["token", "create", "--tenant", "acme", "--role", "reader", "--tables", "trades, quotes"]).command).toMatchObject({ kind: "token.create", tables: ["trades", "quotes"] });
    expect(parsePxctlArgs([]).command).toEqual({ kind: "help" });
  });

  it("pxctl args - mistakes are usage errors that say what to do", () => {
    expect(usageOf(["get"])).toMatch(/get: say which \(tenants\|tables\|shards\|nodes\)/);
    expect(usageOf(["get", "pods"])).toMatch(/pods is not one of tenants, tables, shards, nodes/);
    expect(usageOf(["apply"])).toMatch(/-f spec\.yaml/);
    expect(usageOf(["status", "-o", "xml"])).toMatch(/xml is not one of table, json, yaml/);
    expect(usageOf(["frobnicate"])).toMatch(/unknown command frobnicate/);
    expect(usageOf(["status", "--bogus"])).toMatch(/bogus/);
    expect(() => parseTtl("1w")).toThrow(/use a number with s, m, h or d/);
    expect(parseTtl("never")).toBeUndefined();
  });
});

describe("spec diff", () => {
  const current = new Map([["acme", tenant("acme", { trades: 4, quotes: 2 })]]);

  it("spec diff - added tenants and tables, removed tables, changed fields, with warnings", () => {
    const next = parseClusterSpec({
      tenants: [
        { name: "acme", tables: [{ name: "trades", shards: 8, columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] }] },
        { name: "beta", tables: [{ name: "bars", columns: [{ name: "close", type: "float64" }] }] },
      ],
    });
    const d = diffClusterSpec(current, next);
    expect(d.changedTenants).toEqual(["acme", "beta"]);
    expect(formatDiff(d)).toEqual([
      '~ table acme.trades: columns.size (none) -> {"name":"size","type":"float64","allowNonFinite":false}; shards 4 -> 8',
      "- table acme.quotes",
      "+ tenant beta (1 tables)",
      "+ table beta.bars (4 shards, 1 value columns)",
      "! tenant acme table trades: adding column(s) size restarts its shards and sinks (snapshot + WAL replay); older rows read the default",
      "! tenant acme: table quotes is not in the file and will be removed (its WAL and ClickHouse data are kept)",
    ]);
  });

  it("spec diff - the same spec is no change", () => {
    expect(diffClusterSpec(current, { tenants: [current.get("acme")!] }).changes).toEqual([]);
  });
});

describe("control handlers", () => {
  function backend(conflict = false): ControlBackend & { applied: ClusterSpec[] } {
    const tenants = new Map<string, StoredTenant>([["acme", { spec: tenant("acme", { trades: 2 }), revision: 7 }]]);
    const applied: ClusterSpec[] = [];
    return {
      applied,
      tenants: async () => tenants,
      apply: async (spec, expected) => {
        if (conflict) throw new MetadataConflictError(`tenant acme was changed by someone else since revision ${expected.get("acme")}`);
        applied.push(spec);
        return new Map([["acme", 8]]);
      },
      readState: async (): Promise<ClusterState> => ({
        nowMs: 10_000,
        lease: { record: { holder: "n1", term: 3, leaseMs: 5000, renewedAtMs: 0 }, revision: 40 },
        leaseCreatedMs: 9_000,
        heartbeats: new Map([["n1", { info: { ...heartbeat("n1"), shards: [shardStatus({ tenant: "acme", table: "trades", bucket: 0 }, "live", { appliedLsn: 9, leaseRevision: 5 })] }, revision: 3, createdMs: 9_500 }]]),
        assignments: new Map([
          ["acme.trades.0", { node: "n1", leaseRevision: 5, term: 3, assignedAtMs: 0 }],
          ["acme.trades.1", { node: "n9", leaseRevision: 6, term: 3, assignedAtMs: 0 }],
        ]),
        tenants,
      }),
    };
  }
  const spec = { tenants: [{ name: "acme", tables: [{ name: "trades", shards: 2, maxBatchRows: 5000, columns: [{ name: "price", type: "float64" }] }] }] };

  it("control - apply: dry run changes nothing, a real apply writes only changed tenants against the given revisions", async () => {
    const b = backend();
    const dry = (await handleControl("apply", { spec, dryRun: true }, b)) as { applied: boolean; revisions: Record<string, number> };
    expect(dry).toMatchObject({ applied: false, revisions: { acme: 7 } });
    expect(b.applied).toHaveLength(0);
    const real = (await handleControl("apply", { spec, expectedRevisions: { acme: 7 } }, b)) as { applied: boolean; revisions: Record<string, number> };
    expect(real).toMatchObject({ applied: true, revisions: { acme: 8 } });
  });

  it("control - errors carry codes: conflict, invalid spec, unknown verb, not found", async () => {
    await expect(handleControl("apply", { spec, expectedRevisions: { acme: 6 } }, backend(true))).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(handleControl("apply", { spec: { tenants: [{ name: "Bad", tables: [] }] } }, backend())).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(handleControl("reboot", {}, backend())).rejects.toMatchObject({ code: "UNSUPPORTED" });
    await expect(handleControl("describe", { kind: "node", name: "n7" }, backend())).rejects.toBeInstanceOf(ControlError);
  });

  it("control - shard views explain missing reports: owner down, live", async () => {
    const views = shardViews(await backend().readState());
    expect(views.map((v) => [v.shard, v.owner, v.state])).toEqual([
      ["acme.trades.0", "n1", "live"],
      ["acme.trades.1", "n9", "owner-down"],
    ]);
    expect(shardsTable(views).split("\n")[1]).toMatch(/^acme\.trades\.0\s+n1\s+live\s+5\s+9/);
    expect(table(["A", "B"], [])).toBe("(none)");
  });

  it("heartbeat - the sink's state, its lag and the lag remediation step survive the wire; pxctl status shows them", () => {
    const shard = { tenant: "acme", table: "trades", bucket: 0 };
    const withSink = { ...shardStatus(shard, "running.live", { appliedLsn: 9 }), sinkState: "degraded", lagMs: 4_200, lagStep: 2 };
    const noSink = { ...shardStatus(shard, "running.live"), sinkState: "none" };
    const info = heartbeat("n1");
    const back = [withSink, noSink].map((x) => shardStatusFromMessage(fromBinary(ShardStatusSchema, toBinary(ShardStatusSchema, shardStatusToMessage(x)))));
    expect(back[0]).toMatchObject({ sinkState: "degraded", lagMs: 4_200, lagStep: 2 });
    expect(back[1]!.sinkState).toBeUndefined();
    const views = shardViews({
      nowMs: 0,
      lease: undefined,
      leaseCreatedMs: undefined,
      heartbeats: new Map([["n1", { info: { ...info, shards: [back[0]!] }, revision: 1, createdMs: 0 }]]),
      assignments: new Map([["acme.trades.0", { node: "n1", leaseRevision: 0, term: 1, assignedAtMs: 0 }]]),
      tenants: new Map(),
    });
    expect(shardsTable(views).split("\n")[1]).toMatch(/\sdegraded\s+4\.2s\s+2 hold-eviction$/);
  });
});

describe("controller machine", () => {
  it("controller - starts as a follower reading the lease", () => {
    const [snapshot] = initialTransition(controllerMachine, { id: "c1" });
    expect(snapshot.value).toEqual({ follower: "reading" });
    expect(snapshot.context).toMatchObject({ leaseMs: 5000, renewMs: 1666, guardMs: 1000 });
  });
});
