// pxctl operations commands (compact, snapshot, drain, events): arguments parse to a
// command; bad input is refused with exit 2 naming the argument and the form;
// other commands are left to the main parser.
import { describe, expect, it } from "vitest";
import { parseOpsArgs } from "../../src/cli/ops.js";
import type { CliError} from "../../src/cli/exitcodes.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { drainDone, drainProgress } from "../../src/cli/drain.js";
import type { ShardView } from "../../src/control/index.js";

const refusal = (argv: string[]): CliError => {
  try {
    parseOpsArgs(argv, {});
  } catch (e) {
    return e as CliError;
  }
  throw new Error(`accepted ${argv.join(" ")}`);
};

describe("pxctl ops", () => {
  it("args - compact with shards and --dry-run, snapshot of a tenant, events --last; global flags anywhere", () => {
    expect(parseOpsArgs(["compact", "default.trades.0", "--dry-run", "--nats", "nats://h:1"], {})).toMatchObject({
      inv: { natsUrl: "nats://h:1", output: "table" },
      ops: { name: "compact", shards: ["default.trades.0"], dryRun: true },
    });
    expect(parseOpsArgs(["-o", "json", "snapshot", "default"], {})?.ops).toMatchObject({ name: "snapshot", shards: ["default"], dryRun: false });
    expect(parseOpsArgs(["events", "--last", "5"], { PX_NATS_URL: "nats://e:2" })).toMatchObject({ inv: { natsUrl: "nats://e:2" }, ops: { name: "events", last: 5 } });
  });

  it("args - other commands are not operations commands", () => {
    expect(parseOpsArgs(["status"], {})).toBeUndefined();
    expect(parseOpsArgs(["get", "shards"], {})).toBeUndefined();
  });

  it("args - bad input exits 2 naming what is wrong", () => {
    const bad = refusal(["compact", "Default/trades"]);
    expect(bad.code).toBe(EXIT.usage);
    expect(bad.message).toMatch(/compact Default\/trades: a shard is tenant, tenant.table or tenant.table.bucket/);
    expect(refusal(["snapshot", "--dry-run"]).message).toMatch(/--dry-run is for compact only/);
    expect(refusal(["events", "--last", "0"]).message).toMatch(/--last 0: expected a whole number of at least 1/);
    expect(refusal(["events", "default"]).message).toMatch(/events takes no shard/);
    expect(refusal(["drain", "n1"]).message).toMatch(/drain: give the node to empty, as drain node NODE/);
    expect(refusal(["drain", "node"]).code).toBe(EXIT.usage);
  });

  it("args - move shard TABLE/SHARD [--to NODE] [--clear]; bad forms exit 2 naming the form", () => {
    expect(parseOpsArgs(["move", "shard", "trades/3"], {})?.ops).toMatchObject({ name: "move", shards: [], waitMs: 60_000, move: { table: "trades", bucket: 3, clear: false } });
    expect(parseOpsArgs(["move", "shard", "acme.trades/0", "--to", "n2", "--wait", "9000"], {})?.ops).toMatchObject({ waitMs: 9_000, move: { table: "acme.trades", bucket: 0, to: "n2", clear: false } });
    expect(parseOpsArgs(["move", "shard", "trades/0", "--clear"], {})?.ops.move).toEqual({ table: "trades", bucket: 0, clear: true });
    expect(refusal(["move", "shard", "trades.0"]).message).toMatch(/move shard trades.0: name the shard as <table>\/<shard> or <tenant>.<table>\/<shard>, e.g. trades\/0/);
    expect(refusal(["move", "trades/0"]).message).toMatch(/move: give the shard to move, as move shard <table>\/<shard>/);
    expect(refusal(["move", "shard", "trades/0", "--clear", "--to", "n2"]).message).toMatch(/--clear drops the shard's override and takes no --to/);
    expect(refusal(["drain", "node", "n1", "--to", "n2"]).message).toMatch(/--to and --clear are for move shard only/);
  });

  it("args - drain node NODE waits 60 s by default, --wait sets it", () => {
    expect(parseOpsArgs(["drain", "node", "n2"], {})?.ops).toMatchObject({ name: "drain", node: "n2", shards: [], waitMs: 60_000 });
    expect(parseOpsArgs(["drain", "node", "n2", "--wait", "5000"], {})?.ops).toMatchObject({ waitMs: 5_000 });
    expect(parseOpsArgs(["snapshot"], {})?.ops).toMatchObject({ waitMs: 3_000 });
  });

  it("drain progress - done when the node owns nothing and every shard is live", () => {
    const view = (shards: [string, string][]) => ({ leader: undefined, nodes: [], shards: shards.map(([owner, state]) => ({ owner, state }) as unknown as ShardView) });
    expect(drainProgress("n1", view([["n1", "live"], ["n2", "live"]]))).toEqual({ left: 1, notLive: 0, total: 2 });
    const moving = drainProgress("n1", view([["n2", "replaying"], ["n2", "running.snapshotting"]]));
    expect(moving).toEqual({ left: 0, notLive: 1, total: 2 });
    expect(drainDone(moving)).toBe(false);
    expect(drainDone(drainProgress("n1", view([["n2", "live"], ["n2", "live"]])))).toBe(true);
  });

  it("args - shard skip-record takes the shard as flags, the LSN and a reason; anything missing or stray exits 2 naming it", () => {
    expect(parseOpsArgs(["shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", "3", "--lsn", "1234", "--reason", "corrupt"], {})?.ops).toMatchObject({
      name: "shard",
      shards: [],
      skip: { shard: "default.trades.3", lsn: 1234, reason: "corrupt" },
    });
    expect(refusal(["shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", "3"]).message).toMatch(/shard skip-record needs --lsn/);
    expect(refusal(["shard", "skip-record", "--tenant", "default", "--table", "trades", "--bucket", "3", "--lsn", "0"]).message).toMatch(/--lsn 0: expected a whole number of at least 1/);
    expect(refusal(["shard", "drop"]).message).toMatch(/the shard command is "shard skip-record --tenant T/);
    expect(refusal(["shard", "skip-record", "--tenant", "Default", "--table", "trades", "--bucket", "0", "--lsn", "5"]).message).toMatch(/Default.trades.0 is not a shard/);
    expect(refusal(["compact", "--lsn", "5"]).message).toMatch(/--lsn is for shard skip-record only/);
  });
});
