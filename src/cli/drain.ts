// pxctl drain node NODE: asks NODE to hand its shards to the other nodes (its
// agent goes to `draining`, the leader places its shards elsewhere), then
// follows the cluster status until NODE owns nothing and every shard is live
// on its new owner, printing each change. The drained node leaves the control
// plane; restarting it makes it rejoin.
import type { NatsConnection } from "@nats-io/transport-node";
import { controlRequest } from "../control/index.js";
import type { ShardView, StatusView } from "../control/index.js";
import type { OutputFormat } from "./args.js";
import { CliError, EXIT } from "./exitcodes.js";
import { opsRequest } from "./opsrequest.js";
import { structured } from "./render.js";

export interface DrainProgress {
  /** Shards NODE still owns. */
  readonly left: number;
  /** Shards (anywhere) not live yet: the moved ones still replaying. */
  readonly notLive: number;
  readonly total: number;
}

export const isLive = (s: ShardView): boolean => /^(running\.)?(live|snapshotting)$/.test(s.state);

/** Where the drain of `node` stands in a status view. */
export function drainProgress(node: string, s: StatusView): DrainProgress {
  return { left: s.shards.filter((x) => x.owner === node).length, notLive: s.shards.filter((x) => !isLive(x)).length, total: s.shards.length };
}

export const drainDone = (p: DrainProgress): boolean => p.left === 0 && p.notLive === 0;

export async function runDrain(nc: NatsConnection, node: string, waitMs: number, output: OutputFormat, stdout: (text: string) => void): Promise<number> {
  const replies = await opsRequest(nc, "drain", { node }, 2_000);
  const mine = replies.find((r) => r.node === node);
  if (mine === undefined) {
    const known = replies.map((r) => r.node).join(", ");
    throw new CliError(EXIT.notFound, `no node ${node} answered the drain request${known === "" ? " (no node answered at all: is the cluster up?)" : ` (nodes that answered: ${known})`}; pxctl get nodes lists the nodes`);
  }
  if (mine.error !== undefined) throw new CliError(EXIT.other, mine.error);
  const table = output === "table";
  if (table) stdout(`${node}: ${mine.lines[0]?.message ?? "draining"}`);
  const t0 = Date.now();
  let last = "";
  let lastError = "";
  while (Date.now() - t0 < waitMs) {
    // While the drained node was the leader, the status may fail until another node leads.
    const status = await controlRequest<StatusView>(nc, "status", {}, 2_000).catch((e: unknown) => {
      lastError = (e as Error).message;
      return undefined;
    });
    if (status !== undefined) {
      const p = drainProgress(node, status);
      const seconds = (Date.now() - t0) / 1000;
      if (drainDone(p)) {
        const summary = { node, drained: true, seconds, shards: p.total, owners: [...new Set(status.shards.map((x) => x.owner))].sort() };
        stdout(table ? `drained ${node} in ${seconds.toFixed(1)} s: its shards are live on ${summary.owners.join(", ")}; stop or restart it now (a restarted node rejoins)` : structured(summary, output));
        return EXIT.ok;
      }
      const line = `${p.left} shards left on ${node}, ${p.notLive} of ${p.total} not live yet`;
      if (table && line !== last) stdout(`+${seconds.toFixed(1)} s  ${line}`);
      last = line;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new CliError(EXIT.other, `drain of ${node} not finished within ${waitMs} ms (${last || `no status: ${lastError}`}); pxctl status shows where each shard is`);
}
