// Who calls the HTTP API: the bearer token (the same API tokens as gRPC and
// Flight, checked by the same verifier against the px_tokens store) becomes a
// Principal; its role must allow the action. The verifier opens on first use.
import type { NatsConnection } from "@nats-io/transport-node";
import { authorize } from "../../api/index.js";
import { AuthError, TokenVerifier } from "../../auth/index.js";
import type { Action, Principal } from "../../auth/index.js";

export interface HttpTokens {
  principal(authorization: string | undefined, action: Action): Promise<Principal>;
  stop(): void;
}

export function httpTokens(nc: NatsConnection, replicas: number): HttpTokens {
  let verifier: Promise<TokenVerifier> | undefined;
  return {
    principal: async (authorization, action) => {
      const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
      if (token === undefined) throw new AuthError("UNAUTHENTICATED", "this route needs an API token: send `Authorization: Bearer <token>` (pxctl token create --tenant T --role reader|writer)");
      verifier ??= TokenVerifier.open(nc, { replicas });
      const p = await (await verifier).verify(token);
      authorize(p, action);
      return p;
    },
    stop: () => void verifier?.then((v) => v.close(), () => {}),
  };
}
