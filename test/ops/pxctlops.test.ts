// pxctl operations commands (compact, snapshot, events): arguments parse to a
// command; bad input is refused with exit 2 naming the argument and the form;
// other commands are left to the main parser.
import { describe, expect, it } from "vitest";
import { parseOpsArgs } from "../../src/cli/ops.js";
import type { CliError} from "../../src/cli/exitcodes.js";
import { EXIT } from "../../src/cli/exitcodes.js";

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
