// The operations request of pxctl: sent to every node on px.ctl.ops.<verb>
// (each answers for itself), replies gathered for a while.
import type { NatsConnection } from "@nats-io/transport-node";
import { opsSubject } from "../../protocols/subjects.js";
import type { OpsReply, OpsRequest } from "../node/opsctl.js";

/**
 * Sends an operations request to every node and gathers the replies for `waitMs`.
 * `replies`: the caller knows how many nodes answer (a test's one node), so the
 * gathering ends as soon as that many replied, `waitMs` being only the bound.
 */
export async function opsRequest(nc: NatsConnection, verb: "compact" | "snapshot" | "drain" | "skip-record", body: OpsRequest, waitMs: number, replies?: number): Promise<OpsReply[]> {
  const out: OpsReply[] = [];
  const strategy = replies === undefined ? { strategy: "timer" as const } : { strategy: "count" as const, maxMessages: replies };
  const answers = await nc.requestMany(opsSubject(verb), JSON.stringify(body), { ...strategy, maxWait: waitMs });
  for await (const m of answers) {
    try {
      out.push(JSON.parse(new TextDecoder().decode(m.data)) as OpsReply);
    } catch {
      // Not a node's reply.
    }
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

