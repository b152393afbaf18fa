// Authentication and authorization of one call: the bearer token from the
// call metadata becomes a Principal (tenant + role); the tenant of every
// later step is the Principal's. Messages never echo the token.
import type { Metadata } from "@grpc/grpc-js";
import { AuthError, allows, roleFor } from "../auth/index.js";
import type { Action, Principal } from "../auth/index.js";

/** What the API needs of a token verifier (src/auth TokenVerifier). */
export interface TokenCheck {
  verify(token: string | undefined): Promise<Principal>;
}

function header(md: Metadata, key: string): string | undefined {
  const v = md.get(key)[0];
  return typeof v === "string" ? v.trim() : undefined;
}

/** The bearer token of the call; undefined when there is no authorization header. */
export function bearerOf(md: Metadata): string | undefined {
  const v = header(md, "authorization");
  if (v === undefined || v === "") return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(v);
  if (!m) throw new AuthError("UNAUTHENTICATED", "the authorization header must be `Bearer px_<id>.<secret>`");
  return m[1];
}

export interface BasicCredentials {
  readonly user: string;
  readonly password: string;
}

/** Basic credentials of the call (Flight handshake), if that is what it sent. */
export function basicOf(md: Metadata): BasicCredentials | undefined {
  const v = header(md, "authorization");
  const m = v === undefined ? null : /^Basic\s+(\S+)$/i.exec(v);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) throw new AuthError("UNAUTHENTICATED", "basic credentials must be user:password, with the Proxist token as the password");
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

export async function authenticate(tokens: TokenCheck, md: Metadata): Promise<Principal> {
  return tokens.verify(bearerOf(md));
}

const VERBS: Record<Action, string> = { query: "read data", ingest: "ingest data", manage: "manage the cluster" };

export function authorize(p: Principal, action: Action): void {
  if (!allows(p.role, action)) {
    throw new AuthError("PERMISSION_DENIED", `this token's role ${p.role} may not ${VERBS[action]}; ask an admin for a ${roleFor(action)} token`);
  }
}
