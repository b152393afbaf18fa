// The operations request of pxctl: sent to every node on px.ctl.ops.<verb>
// (each answers for itself), replies gathered until every live node answered
// or the wait ran out.
import { createInbox } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { opsSubject } from "../../protocols/subjects.js";
import { controlRequest } from "../control/index.js";
import type { StatusView } from "../control/index.js";
import type { OpsReply, OpsRequest } from "../node/opsctl.js";

/** A node whose heartbeat is older than this is not waited for (it may still answer within the wait). */
const LIVE_HEARTBEAT_MS = 5_000;
/**
 * Once every expected node answered, replies are still taken for this long:
 * a node the answering controller does not know (a second standalone node on
 * the same NATS) gets a moment to be heard.
 */
const GRACE_MS = 250;

/**
 * The nodes the leader sees alive, or undefined when no controller answers
 * (a standalone node, or no leader right now): then the caller waits the whole time.
 */
async function liveNodes(nc: NatsConnection, waitMs: number): Promise<ReadonlySet<string> | undefined> {
  const status = await controlRequest<StatusView>(nc, "status", {}, Math.min(1_000, waitMs)).catch(() => undefined);
  if (status === undefined || status.nodes.length === 0) return undefined;
  return new Set(status.nodes.filter((n) => n.heartbeatAgeMs < LIVE_HEARTBEAT_MS).map((n) => n.id));
}

/**
 * Sends an operations request to every node and gathers the replies until each
 * node the leader sees alive has answered (and then GRACE_MS without a new
 * one), or for `waitMs` at most. Without a leader's view it gathers for the
 * whole `waitMs`, which is what every call paid before, even on one node.
 * `replies`: the caller knows how many nodes answer (a test's one node), so
 * the gathering ends as soon as that many replied.
 */
export async function opsRequest(nc: NatsConnection, verb: "compact" | "snapshot" | "drain" | "skip-record", body: OpsRequest, waitMs: number, replies?: number): Promise<OpsReply[]> {
  const t0 = Date.now();
  const expected = replies === undefined ? await liveNodes(nc, waitMs) : undefined;
  const out: OpsReply[] = [];
  const answered = new Set<string>();
  // A plain inbox subscription rather than requestMany: the gathering must end
  // early once every expected node answered, which requestMany's timer cannot.
  // The connection's inbox prefix: a restricted user may only subscribe below it.
  const inbox = createInbox((nc as { options?: { inboxPrefix?: string } }).options?.inboxPrefix);
  await new Promise<void>((resolve) => {
    let grace: ReturnType<typeof setTimeout> | undefined;
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(grace);
      clearTimeout(deadline);
      sub.unsubscribe();
      resolve();
    };
    const sub = nc.subscribe(inbox, {
      callback: (_err, m) => {
        try {
          const r = JSON.parse(new TextDecoder().decode(m.data)) as OpsReply;
          out.push(r);
          answered.add(r.node);
        } catch {
          // Not a node's reply (or an empty no-responders status).
        }
        if (replies !== undefined && out.length >= replies) finish();
        else if (expected !== undefined && [...expected].every((n) => answered.has(n))) {
          clearTimeout(grace);
          grace = setTimeout(finish, GRACE_MS);
        }
      },
    });
    const deadline = setTimeout(finish, Math.max(1, waitMs - (Date.now() - t0)));
    nc.publish(opsSubject(verb), JSON.stringify(body), { reply: inbox });
  });
  return out.sort((a, b) => a.node.localeCompare(b.node));
}
