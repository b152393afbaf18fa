// Admin gate of the node's HTTP routes that change state (/v1/snapshot): the
// caller presents an admin API token (`Authorization: Bearer px_...`), checked
// like gRPC tokens; the route then acts on the token's tenant only. The verifier opens on first use; stop() closes it.
import type { NatsConnection } from "@nats-io/transport-node";
import { AuthError, TokenVerifier, allows } from "../auth/index.js";
import type { AdminCaller, HttpReply } from "./http.js";

export interface HttpAdminGate {
  authorize(authorization: string | undefined): Promise<HttpReply | AdminCaller>;
  stop(): void;
}

const refuse = (status: number, error: string): HttpReply => ({ status, body: JSON.stringify({ error }) });

export function httpAdminGate(nc: NatsConnection, replicas: number): HttpAdminGate {
  let verifier: Promise<TokenVerifier> | undefined;
  return {
    authorize: async (authorization) => {
      const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
      if (!token) return refuse(401, "this route needs an admin token: send `Authorization: Bearer <token>` (pxctl token create --tenant T --role admin)");
      verifier ??= TokenVerifier.open(nc, { replicas });
      try {
        const who = await (await verifier).verify(token);
        if (!allows(who.role, "manage")) return refuse(403, `this route needs the admin role; the token's role is ${who.role}`);
        return { tenant: who.tenant, ...(who.tables === undefined ? {} : { tables: who.tables }) };
      } catch (e) {
        if (e instanceof AuthError) return refuse(e.code === "UNAUTHENTICATED" ? 401 : 403, e.message);
        return refuse(503, `tokens cannot be checked right now (${(e as Error).message}); retry shortly`);
      }
    },
    stop: () => void verifier?.then((v) => v.close(), () => {}),
  };
}
