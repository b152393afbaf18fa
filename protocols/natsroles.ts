// The NATS side of the identity model: which subjects each role may publish
// and subscribe to. nats-server enforces these permissions (they travel in the
// user JWT); Proxist only decides them here, in one place.
import {
  CONTROL_WILDCARD,
  feedStream,
  feedSubjectsOfTenant,
  ingestErrorSubject,
  ingestErrorSubjectsOfTenant,
  ingestStatusSubject,
  ingestSubject,
  ingestSubjectsOfTenant,
  tenantInboxPrefix,
  watermarkSubjectsOfTenant,
} from "./subjects.js";

/**
 * service: Proxist nodes (gateway, shards, sinks, control plane);
 * admin: pxctl (control requests, KV, JetStream management);
 * publisher: one tenant's ingest (publish `px.<t>.ingest.>`, replies on its own inbox);
 * subscriber: one tenant's feeds and watermarks.
 */
export const NATS_ROLES = ["service", "admin", "publisher", "subscriber"] as const;
export type NatsRole = (typeof NATS_ROLES)[number];
export const TENANT_NATS_ROLES: readonly NatsRole[] = ["publisher", "subscriber"];

export function isNatsRole(s: unknown): s is NatsRole {
  return typeof s === "string" && (NATS_ROLES as readonly string[]).includes(s);
}

export interface SubjectPermissions {
  readonly pub: { readonly allow: readonly string[] };
  readonly sub: { readonly allow: readonly string[] };
}

export interface RoleScope {
  readonly role: NatsRole;
  /** Required for publisher and subscriber. */
  readonly tenant?: string;
  /** The credential's id: names its private reply inbox (tenant roles). */
  readonly credId?: string;
  /** Publisher only: the tables it may ingest into (absent: every table of its tenant). */
  readonly tables?: readonly string[];
}

/**
 * Allowed subjects of a role; undefined: no restriction inside the account
 * (the service role: nodes serve every tenant, run the JetStream API and
 * answer every inbox, so a list would name everything the account has).
 */
export function permissionsOf(scope: RoleScope): SubjectPermissions | undefined {
  switch (scope.role) {
    case "service":
      if (scope.tables !== undefined) throw new Error("table grants (--tables) apply to publisher credentials; a service credential serves every table");
      return undefined;
    case "admin":
      if (scope.tables !== undefined) throw new Error("table grants (--tables) apply to publisher credentials; an admin credential is not scoped to tables");
      // pxctl: control requests, KV buckets (tokens, creds, config) through the JetStream API.
      return { pub: { allow: [CONTROL_WILDCARD, "$JS.API.>", "$KV.>"] }, sub: { allow: ["_INBOX.>"] } };
    case "publisher": {
      const { tenant, inbox } = tenantScope(scope);
      const t = scope.tables;
      // Table grants: those tables' ingest and error subjects, and the ingest status request (a producer resumes with it).
      if (t !== undefined) return { pub: { allow: [...t.map((x) => ingestSubject(tenant, x)), ingestStatusSubject(tenant)] }, sub: { allow: [`${inbox}.>`, ...t.map((x) => ingestErrorSubject(tenant, x))] } };
      return { pub: { allow: [ingestSubjectsOfTenant(tenant)] }, sub: { allow: [`${inbox}.>`, ingestErrorSubjectsOfTenant(tenant)] } };
    }
    case "subscriber": {
      if (scope.tables !== undefined) throw new Error("table grants (--tables) apply to publisher credentials; a subscriber reads its tenant's feeds and watermarks");
      const { tenant, inbox } = tenantScope(scope);
      const stream = feedStream(tenant);
      return {
        // Ordered/durable consumers on its own feed stream only.
        pub: {
          allow: [
            `$JS.API.STREAM.INFO.${stream}`,
            `$JS.API.CONSUMER.CREATE.${stream}`,
            `$JS.API.CONSUMER.CREATE.${stream}.>`,
            `$JS.API.CONSUMER.INFO.${stream}.>`,
            `$JS.API.CONSUMER.DELETE.${stream}.>`,
            `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
            `$JS.ACK.${stream}.>`,
          ],
        },
        sub: { allow: [`${inbox}.>`, feedSubjectsOfTenant(tenant), watermarkSubjectsOfTenant(tenant)] },
      };
    }
  }
}

function tenantScope(scope: RoleScope): { tenant: string; inbox: string } {
  if (!scope.tenant || !scope.credId) throw new Error(`role ${scope.role} needs a tenant and a credential id`);
  return { tenant: scope.tenant, inbox: tenantInboxPrefix(scope.tenant, scope.credId) };
}
