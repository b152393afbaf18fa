// The operations request of pxctl: sent to every node on px.ctl.ops.<verb>
// (each answers for itself), replies gathered for a while.
import type { NatsConnection } from "@nats-io/transport-node";
import { opsSubject } from "../../protocols/subjects.js";
import type { OpsReply, OpsRequest } from "../node/opsctl.js";

/** Sends an operations request to every node and gathers the replies for `waitMs`. */
export async function opsRequest(nc: NatsConnection, verb: "compact" | "snapshot" | "drain", body: OpsRequest, waitMs: number): Promise<OpsReply[]> {
  const out: OpsReply[] = [];
  const replies = await nc.requestMany(opsSubject(verb), JSON.stringify(body), { strategy: "timer", maxWait: waitMs });
  for await (const m of replies) {
    try {
      out.push(JSON.parse(new TextDecoder().decode(m.data)) as OpsReply);
    } catch {
      // Not a node's reply.
    }
  }
  return out.sort((a, b) => a.node.localeCompare(b.node));
}

