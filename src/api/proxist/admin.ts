// proxist.v1.ProxistAdmin: what pxctl does over NATS (apply a spec, manage API
// tokens and NATS credentials), over gRPC for a tenant's admins. Every call
// needs an admin token and acts on that token's tenant only: the spec applied
// is the caller's tenant's, tokens and credentials are created, listed and
// revoked within it. Credentials need the node's auth directory (PX_AUTH_DIR).
import { create } from "@bufbuild/protobuf";
import type { ServerUnaryCall, sendUnaryData } from "@grpc/grpc-js";
import {
  ApplyTenantReplySchema,
  CreateCredsReplySchema,
  CreateTokenReplySchema,
  CredsInfoSchema,
  ListCredsReplySchema,
  ListTokensReplySchema,
  RevokeCredsReplySchema,
  RevokeTokenReplySchema,
  TokenInfoSchema,
} from "../../../protocols/gen/proxist/v1/admin_pb.js";
import type {
  ApplyTenantReply,
  ApplyTenantRequest,
  CreateCredsReply,
  CreateCredsRequest,
  CreateTokenReply,
  CreateTokenRequest,
  ListCredsReply,
  ListCredsRequest,
  ListTokensReply,
  ListTokensRequest,
  RevokeCredsReply,
  RevokeCredsRequest,
  RevokeTokenReply,
  RevokeTokenRequest,
} from "../../../protocols/gen/proxist/v1/admin_pb.js";
import { AuthError, CredsOptionsError, TokenNotFoundError, TokenOptionsError, createToken, getToken, isRole, listCreds, listTokens, revokeToken, tokenIdOf } from "../../auth/index.js";
import type { Principal } from "../../auth/index.js";
import { ControlReplyError, ControlUnreachableError, controlRequest } from "../../control/index.js";
import { isNatsRole } from "../../../protocols/index.js";
import type { ApplyReply } from "../../control/index.js";
import { authenticate, authorize } from "../auth.js";
import { failUnary } from "../context.js";
import type { ApiContext, CredsIssuer } from "../context.js";
import { ApiError } from "../errors.js";
import { unwrap } from "../grpcdef.js";
import type { Decoded } from "../grpcdef.js";

type Unary<Req, Res> = (call: ServerUnaryCall<Decoded<Req>, Res>, callback: sendUnaryData<Res>) => void;

/** One admin call: authenticated, the admin role checked, errors of the token store and the control plane mapped to statuses. */
function adminCall<Req, Res>(ctx: ApiContext, run: (p: Principal, req: Req) => Promise<Res>): Unary<Req, Res> {
  return (call, callback) => {
    void (async () => {
      const p = await authenticate(ctx.tokens, call.metadata);
      authorize(p, "manage");
      callback(null, await run(p, unwrap(call.request)));
    })().catch((e: unknown) => failUnary(ctx, callback, apiErrorOf(e)));
  };
}

const CONTROL_CODES: Record<string, ApiError["code"]> = { INVALID_ARGUMENT: "INVALID_ARGUMENT", NOT_FOUND: "NOT_FOUND", CONFLICT: "FAILED_PRECONDITION", UNAVAILABLE: "UNAVAILABLE" };

function apiErrorOf(e: unknown): unknown {
  if (e instanceof CredsOptionsError) return new ApiError("INVALID_ARGUMENT", e.message, { cause: e });
  if (e instanceof TokenOptionsError) return new ApiError("INVALID_ARGUMENT", e.message, { cause: e });
  if (e instanceof TokenNotFoundError) return new ApiError("NOT_FOUND", e.message, { cause: e });
  if (e instanceof ControlReplyError) return new ApiError(CONTROL_CODES[e.code] ?? "INTERNAL", e.message, { cause: e });
  if (e instanceof ControlUnreachableError) return new ApiError("UNAVAILABLE", e.message, { cause: e });
  return e;
}

/** The tenant spec of the request, named for the caller's tenant (a name of another tenant is PERMISSION_DENIED). */
function tenantSpecOf(p: Principal, json: string): Record<string, unknown> {
  let spec: unknown;
  try {
    spec = JSON.parse(json);
  } catch (e) {
    throw new ApiError("INVALID_ARGUMENT", `tenant_spec_json is not valid JSON (${(e as Error).message}); send one tenant's spec, e.g. {"tables":[{"name":"trades","columns":[{"name":"price","type":"float64"}]}]}`);
  }
  if (typeof spec !== "object" || spec === null || Array.isArray(spec)) throw new ApiError("INVALID_ARGUMENT", "tenant_spec_json must be a JSON object: one tenant's spec (its tables, feeds)");
  const named = (spec as { name?: unknown }).name;
  if (named !== undefined && named !== p.tenant) throw new AuthError("PERMISSION_DENIED", `the spec names tenant ${String(named).slice(0, 40)}; this admin token manages tenant ${p.tenant} only`);
  return { ...spec, name: p.tenant };
}

/** A table-granted admin token may not hand out more than it reaches: `tables` must be a non-empty subset of its grants. */
function checkWithinGrants(p: Principal, tables: readonly string[], what: string): void {
  if (p.tables !== undefined && (tables.length === 0 || tables.some((t) => !p.tables!.includes(t)))) {
    throw new AuthError("PERMISSION_DENIED", `this admin token may use only tables ${p.tables.join(", ")}; ${what} it creates must name tables among them`);
  }
}

/** The node's NATS identity, or FAILED_PRECONDITION naming how to give it one. */
function issuerOf(ctx: ApiContext): CredsIssuer {
  if (ctx.creds === undefined) {
    throw new ApiError("FAILED_PRECONDITION", "this node holds no NATS identity, so it cannot mint or revoke NATS credentials; start the node with PX_AUTH_DIR=<dir> (the deployment's auth directory, e.g. <data-dir>/auth) or use pxctl creds create|list|revoke");
  }
  return ctx.creds;
}

export function adminService(ctx: ApiContext) {
  const nc = ctx.node.nc;
  return {
    applyTenant: adminCall<ApplyTenantRequest, ApplyTenantReply>(ctx, async (p, req) => {
      // The control plane's apply (px.ctl.apply) with this one tenant: tenants absent from a spec are left as they are.
      const reply = await controlRequest<ApplyReply>(nc, "apply", { spec: { tenants: [tenantSpecOf(p, req.tenantSpecJson)] }, dryRun: req.dryRun }, 10_000);
      return create(ApplyTenantReplySchema, { applied: reply.applied, diffJson: JSON.stringify(reply.diff), revision: BigInt(reply.revisions[p.tenant] ?? 0) });
    }),
    createToken: adminCall<CreateTokenRequest, CreateTokenReply>(ctx, async (p, req) => {
      if (!isRole(req.role)) throw new ApiError("INVALID_ARGUMENT", `role "${req.role.slice(0, 20)}" is unknown; use reader, writer or admin`);
      checkWithinGrants(p, req.tables, "a token");
      const token = await createToken(nc, {
        tenant: p.tenant,
        role: req.role,
        ...(req.ttlSeconds === 0n ? {} : { ttlSeconds: Number(req.ttlSeconds) }),
        ...(req.note === "" ? {} : { note: req.note }),
        ...(req.tables.length === 0 ? {} : { tables: req.tables }),
      });
      return create(CreateTokenReplySchema, { token, id: `px_${tokenIdOf(token) ?? ""}` });
    }),
    listTokens: adminCall<ListTokensRequest, ListTokensReply>(ctx, async (p) => {
      const tokens = await listTokens(nc, p.tenant);
      return create(ListTokensReplySchema, {
        tokens: tokens.map((t) =>
          create(TokenInfoSchema, { id: `px_${t.id}`, role: t.role, createdAtMs: BigInt(t.createdAtMs), expiresAtMs: BigInt(t.expiresAtMs ?? 0), revokedAtMs: BigInt(t.revokedAtMs ?? 0), note: t.note, tables: [...(t.tables ?? [])] }),
        ),
      });
    }),
    revokeToken: adminCall<RevokeTokenRequest, RevokeTokenReply>(ctx, async (p, req) => {
      const id = tokenIdOf(req.id);
      // Another tenant's token reads as unknown: an admin cannot probe which ids exist elsewhere.
      if (id === undefined || (await getToken(nc, id))?.tenant !== p.tenant) {
        // Named by id only: the request may hold a whole token, whose secret is never echoed.
        throw new TokenNotFoundError(`${id === undefined ? "that is not a token id" : `token px_${id} is not a token of tenant ${p.tenant}`}; ListTokens shows the ids (px_<id>)`);
      }
      await revokeToken(nc, id);
      return create(RevokeTokenReplySchema, {});
    }),
    createCreds: adminCall<CreateCredsRequest, CreateCredsReply>(ctx, async (p, req) => {
      const issuer = issuerOf(ctx);
      if (req.role === "service" || req.role === "admin") {
        // Service and admin users reach every tenant: not a tenant admin's to hand out.
        throw new AuthError("PERMISSION_DENIED", `${req.role} credentials reach every tenant, so a tenant's admin token cannot mint them; use pxctl creds create --role ${req.role} where the deployment's identity is`);
      }
      if (!isNatsRole(req.role)) throw new ApiError("INVALID_ARGUMENT", `role "${req.role.slice(0, 20)}" is unknown; use publisher or subscriber`);
      checkWithinGrants(p, req.tables, "credentials");
      // The reply is the only copy of the seed: nothing is written, and KV records the public key.
      const { minted, info } = await issuer.issue({ role: req.role, tenant: p.tenant, ...(req.tables.length === 0 ? {} : { tables: req.tables }), ...(req.ttlSeconds === 0n ? {} : { ttlSeconds: Number(req.ttlSeconds) }), note: req.note });
      return create(CreateCredsReplySchema, { creds: minted.creds, id: minted.credId, inboxPrefix: minted.inboxPrefix ?? "", expiresAtMs: BigInt(minted.expiresAtMs ?? 0), feeds: [...(info.feeds ?? [])] });
    }),
    listCreds: adminCall<ListCredsRequest, ListCredsReply>(ctx, async (p) => {
      issuerOf(ctx);
      const list = await listCreds(nc, p.tenant);
      return create(ListCredsReplySchema, {
        creds: list.map((c) =>
          create(CredsInfoSchema, {
            id: c.id,
            role: c.role,
            publicKey: c.publicKey,
            createdAtMs: BigInt(c.createdAtMs),
            expiresAtMs: BigInt(c.expiresAtMs ?? 0),
            revokedAtMs: BigInt(c.revokedAtMs ?? 0),
            note: c.note,
            tables: [...(c.tables ?? [])],
            feeds: [...(c.feeds ?? [])],
          }),
        ),
      });
    }),
    revokeCreds: adminCall<RevokeCredsRequest, RevokeCredsReply>(ctx, async (p, req) => {
      // Another tenant's credentials read as unknown (revokeCreds with the tenant).
      await issuerOf(ctx).revoke(req.id, p.tenant);
      return create(RevokeCredsReplySchema, {});
    }),
  };
}
