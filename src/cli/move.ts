// pxctl move shard <table>/<bucket> [--to NODE] [--clear]: asks the control
// plane (px.ctl.move) to place one shard on another node (a placement override
// the leader keeps honouring until it is cleared or the node dies), then, as
// drain does, follows the cluster status until the shard is live on its new
// owner, printing each change. --clear drops the override.
import type { NatsConnection } from "@nats-io/transport-node";
import { controlRequest } from "../control/index.js";
import type { StatusView } from "../control/index.js";
import { MOVE_VERB } from "../../protocols/placement.js";
import type { MoveShardReply, MoveShardRequest } from "../../protocols/placement.js";
import type { OutputFormat } from "./args.js";
import { isLive } from "./drain.js";
import { CliError, EXIT } from "./exitcodes.js";
import { structured } from "./render.js";

/** `<table>/<bucket>` or `<tenant>.<table>/<bucket>` -> the request's table and bucket. */
export function parseShardArg(text: string): { table: string; bucket: number } {
  const m = /^((?:[a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*)\/(0|[1-9][0-9]*)$/.exec(text);
  if (m === null) throw new CliError(EXIT.usage, `move shard ${text}: name the shard as <table>/<shard> or <tenant>.<table>/<shard>, e.g. trades/0 (pxctl get shards lists them)`);
  return { table: m[1]!, bucket: Number(m[2]) };
}

export async function runMove(nc: NatsConnection, req: MoveShardRequest, waitMs: number, output: OutputFormat, stdout: (text: string) => void): Promise<number> {
  const reply = await controlRequest<MoveShardReply>(nc, MOVE_VERB, req, 5_000);
  const table = output === "table";
  if (req.clear === true) {
    stdout(table ? reply.message : structured(reply, output));
    return EXIT.ok;
  }
  if (table) stdout(reply.message);
  const t0 = Date.now();
  let last = "";
  let lastError = "";
  while (Date.now() - t0 < waitMs) {
    const status = await controlRequest<StatusView>(nc, "status", {}, 2_000).catch((e: unknown) => {
      lastError = (e as Error).message;
      return undefined;
    });
    const s = status?.shards.find((x) => x.shard === reply.shard);
    if (s !== undefined) {
      const seconds = (Date.now() - t0) / 1000;
      if (s.owner === reply.to && isLive(s)) {
        const summary = { ...reply, moved: true, seconds, state: s.state, leaseRevision: s.leaseRevision };
        stdout(table ? `moved ${reply.shard} from ${reply.from || "nobody"} to ${reply.to} in ${seconds.toFixed(1)} s: live there (lease revision ${s.leaseRevision})` : structured(summary, output));
        return EXIT.ok;
      }
      const line = `owner ${s.owner || "none"}, ${s.state}`;
      if (table && line !== last) stdout(`+${seconds.toFixed(1)} s  ${line}`);
      last = line;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new CliError(EXIT.other, `move of ${reply.shard} to ${reply.to} not finished within ${waitMs} ms (${last || `no status: ${lastError}`}); pxctl status shows where it is`);
}
