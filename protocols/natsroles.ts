// The NATS side of the identity model: which subjects each role may publish
// and subscribe to. nats-server enforces these permissions (they travel in the
// user JWT); Proxist only decides them here, in one place.
import {
  CONTROL_WILDCARD,
  EVENTS_STREAM,
  KV_CREDS,
  KV_TOKENS,
  TENANT_INBOX_ROOT,
  feedStream,
  feedSubject,
  feedSubjectsOfTenant,
  ingestErrorSubject,
  ingestErrorSubjectsOfTenant,
  ingestStatusSubject,
  ingestSubject,
  ingestSubjectsOfTenant,
  tenantInboxPrefix,
  watermarkSubjectsOfTable,
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
  /**
   * Table grants (absent: every table of its tenant). Publisher: the tables it
   * may ingest into. Subscriber: the tables whose watermarks it may read; its
   * feeds are then exactly `feeds`.
   */
  readonly tables?: readonly string[];
  /** Subscriber with table grants: the feeds it may consume (those reading only granted tables, resolved at mint time). */
  readonly feeds?: readonly string[];
}

/** The tables a materialized feed reads: its table, and an as-of feed's right table. */
export function tablesOfFeed(query: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  if (typeof query.table === "string") out.push(query.table);
  const right = query.right as { table?: unknown } | undefined;
  if (query.op === "asof" && typeof right?.table === "string") out.push(right.table);
  return out;
}

/** The feeds a subscriber granted `tables` may consume: those that read only granted tables. */
export function feedsWithin(feeds: readonly { readonly name: string; readonly query: Readonly<Record<string, unknown>> }[], tables: readonly string[]): string[] {
  const granted = new Set(tables);
  return feeds.filter((f) => tablesOfFeed(f.query).every((t) => granted.has(t))).map((f) => f.name).sort();
}

/**
 * What a client needs of the JetStream API to read one stream through consumers
 * (nats.js and nats-py alike): the stream's info, creating, reading, deleting
 * its consumers (pull and push), acks and flow-control replies.
 */
export function streamReadApi(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}`,
    `$JS.API.CONSUMER.CREATE.${stream}.>`,
    `$JS.API.CONSUMER.INFO.${stream}.>`,
    `$JS.API.CONSUMER.DELETE.${stream}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
    `$JS.ACK.${stream}.>`,
    `$JS.FC.${stream}.>`,
  ];
}

/** Reading and writing one KV bucket (a put is a publish on `$KV.<bucket>.<key>`; opening it may create it). */
export function kvBucketApi(bucket: string): string[] {
  const stream = `KV_${bucket}`;
  return [`$KV.${bucket}.>`, `$JS.API.STREAM.CREATE.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`, ...streamReadApi(stream)];
}

/**
 * The service role (nodes: gateway, shards, sinks, feeds, control plane). The
 * Proxist account holds only Proxist's own subjects, so this is an allow-list
 * of its namespaces rather than of single subjects: `px.>` (ingest, WAL,
 * watermarks, feeds, control, node-to-node), the JetStream API, acks and flow
 * control, KV and object-store subjects, its own request inboxes, and replies
 * to tenants' private inboxes. What it is refused: subscribing to a tenant's
 * private inbox (the replies the node itself sends to that tenant), and any
 * subject outside these namespaces.
 */
const SERVICE_PERMISSIONS: SubjectPermissions = {
  pub: { allow: ["px.>", "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "$O.>", "_INBOX.>", `${TENANT_INBOX_ROOT}.>`] },
  sub: { allow: ["px.>", "_INBOX.>"] },
};

/**
 * pxctl: control requests, the KV buckets it keeps itself (tokens, NATS
 * credentials), the ops event stream it reads (`pxctl ops events`), and the
 * JetStream account info every JetStream client asks first. Not the WAL,
 * watermark or feed streams, not the other KV buckets (specs go through
 * `px.ctl.apply`, where the control plane checks them), not stream deletion.
 */
const ADMIN_PERMISSIONS: SubjectPermissions = {
  pub: { allow: [CONTROL_WILDCARD, "$JS.API.INFO", ...kvBucketApi(KV_TOKENS), ...kvBucketApi(KV_CREDS), ...streamReadApi(EVENTS_STREAM)] },
  sub: { allow: ["_INBOX.>"] },
};

/** Allowed subjects of a role, enforced by nats-server from the user JWT. */
export function permissionsOf(scope: RoleScope): SubjectPermissions {
  switch (scope.role) {
    case "service":
      if (scope.tables !== undefined) throw new Error("table grants (--tables) apply to publisher credentials; a service credential serves every table");
      return SERVICE_PERMISSIONS;
    case "admin":
      if (scope.tables !== undefined) throw new Error("table grants (--tables) apply to publisher credentials; an admin credential is not scoped to tables");
      return ADMIN_PERMISSIONS;
    case "publisher": {
      const { tenant, inbox } = tenantScope(scope);
      const t = scope.tables;
      // Table grants: those tables' ingest and error subjects, and the ingest status request (a producer resumes with it).
      if (t !== undefined) return { pub: { allow: [...t.map((x) => ingestSubject(tenant, x)), ingestStatusSubject(tenant)] }, sub: { allow: [`${inbox}.>`, ...t.map((x) => ingestErrorSubject(tenant, x))] } };
      return { pub: { allow: [ingestSubjectsOfTenant(tenant)] }, sub: { allow: [`${inbox}.>`, ingestErrorSubjectsOfTenant(tenant)] } };
    }
    case "subscriber": {
      const { tenant, inbox } = tenantScope(scope);
      const stream = feedStream(tenant);
      // Consumers of its own feed stream only. With table grants, a consumer may be created only with a
      // granted feed's subject as its filter (the API subject carries the filter: nats.js and nats-py both
      // use that form for a single filter), and only those feeds' and tables' subjects may be subscribed to.
      const t = scope.tables;
      if (t === undefined && scope.feeds !== undefined) throw new Error("feed grants come with table grants (--tables); without them a subscriber reads every feed of its tenant");
      const create = t === undefined ? [`$JS.API.CONSUMER.CREATE.${stream}`, `$JS.API.CONSUMER.CREATE.${stream}.>`] : (scope.feeds ?? []).map((f) => `$JS.API.CONSUMER.CREATE.${stream}.*.${feedSubject(tenant, f)}`);
      const reads = t === undefined ? [feedSubjectsOfTenant(tenant), watermarkSubjectsOfTenant(tenant)] : [...(scope.feeds ?? []).map((f) => feedSubject(tenant, f)), ...t.map((x) => watermarkSubjectsOfTable(tenant, x))];
      return {
        pub: {
          allow: [
            `$JS.API.STREAM.INFO.${stream}`,
            ...create,
            `$JS.API.CONSUMER.INFO.${stream}.>`,
            `$JS.API.CONSUMER.DELETE.${stream}.>`,
            `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`,
            `$JS.ACK.${stream}.>`,
          ],
        },
        sub: { allow: [`${inbox}.>`, ...reads] },
      };
    }
  }
}

function tenantScope(scope: RoleScope): { tenant: string; inbox: string } {
  if (!scope.tenant || !scope.credId) throw new Error(`role ${scope.role} needs a tenant and a credential id`);
  return { tenant: scope.tenant, inbox: tenantInboxPrefix(scope.tenant, scope.credId) };
}
