// Registry of issued NATS credentials in KV px_creds: who holds which public
// key (tenant, role, expiry, revocation). Seeds are never stored: the `.creds`
// file pxctl wrote is the only copy. Revocation itself is a claim in the
// account JWT (natsjwt.ts); this record says when and is what `list` shows.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { KV_CREDS, isNatsRole } from "../../protocols/index.js";
import type { NatsRole } from "../../protocols/index.js";
import { TokenNotFoundError } from "./errors.js";
import { storeLimits } from "../config/limits.js";

export interface CredsInfo {
  readonly id: string;
  readonly tenant: string | null;
  readonly role: NatsRole;
  /** Table grants (absent or null: every table of its tenant). */
  readonly tables?: readonly string[] | null;
  /** A subscriber's feeds under its table grants, as resolved when it was minted (absent or null: every feed). */
  readonly feeds?: readonly string[] | null;
  /** The NATS user public key (not a secret). */
  readonly publicKey: string;
  readonly createdAtMs: number;
  readonly expiresAtMs: number | null;
  readonly revokedAtMs: number | null;
  readonly note: string;
}

export async function openCredsBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(KV_CREDS, { history: 5, replicas, max_bytes: storeLimits().controlBucketMaxBytes });
}

const KEY_RE = /^c\.([0-9a-f]{12})$/;
const keyOf = (id: string): string => `c.${id}`;

function decodeInfo(v: unknown): CredsInfo | undefined {
  const r = v as Partial<CredsInfo> | null;
  if (!r || typeof r.id !== "string" || !isNatsRole(r.role) || typeof r.publicKey !== "string") return undefined;
  return r as CredsInfo;
}

export async function recordCreds(nc: NatsConnection, info: CredsInfo): Promise<void> {
  await (await openCredsBucket(nc)).create(keyOf(info.id), JSON.stringify(info));
}

export async function getCreds(nc: NatsConnection, id: string): Promise<CredsInfo> {
  const e = await (await openCredsBucket(nc)).get(keyOf(id));
  const info = e && e.operation === "PUT" ? decodeInfo(e.json()) : undefined;
  if (!info) throw new TokenNotFoundError(`credentials ${id} do not exist; list them with \`pxctl creds list\``);
  return info;
}

export async function markCredsRevoked(nc: NatsConnection, id: string, nowMs = Date.now()): Promise<void> {
  const kv = await openCredsBucket(nc);
  const info = await getCreds(nc, id);
  if (info.revokedAtMs !== null) return;
  await kv.put(keyOf(id), JSON.stringify({ ...info, revokedAtMs: nowMs }));
}

export async function listCreds(nc: NatsConnection, tenant?: string): Promise<CredsInfo[]> {
  const kv = await openCredsBucket(nc);
  const keys: string[] = [];
  for await (const k of await kv.keys("c.>")) if (KEY_RE.test(k)) keys.push(k);
  const out: CredsInfo[] = [];
  for (const key of keys) {
    const e = await kv.get(key);
    const info = e && e.operation === "PUT" ? decodeInfo(e.json()) : undefined;
    if (info && (tenant === undefined || info.tenant === tenant)) out.push(info);
  }
  return out.sort((a, b) => a.createdAtMs - b.createdAtMs);
}
