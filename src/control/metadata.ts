// Metadata store: desired state (tenant specs) in the JetStream KV bucket
// px_config. Every write is a compare-and-set on the revision the writer read,
// so two concurrent applies cannot silently overwrite each other.
//
// The compare-and-set is on the bucket's last sequence (Nats-Expected-Last-Sequence),
// not the key's: on nats-server before 2.10 a clustered (R3) stream only pre-checks
// the per-key expectation outside Raft, so two concurrent kv.update()s of one key
// can both succeed (nats-server#4320). The stream-wide check is serialized by the
// stream leader. A write to another tenant in between makes us re-read and re-check,
// not fail.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { KV_CONFIG, tenantConfigKey } from "../../protocols/subjects.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TenantSpec } from "../../protocols/tablespec.js";
import { TaggedError } from "../../protocols/tagged.js";
import { storeLimits } from "../config/limits.js";

export class MetadataConflictError extends TaggedError("MetadataConflictError") {}

export interface StoredTenant {
  readonly spec: TenantSpec;
  readonly revision: number;
}

const TENANT_PREFIX = "tenant.";

export async function openConfigBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(KV_CONFIG, { history: 10, replicas, max_bytes: storeLimits().controlBucketMaxBytes });
}

/** Tenant specs as of one bucket revision, read from the stream leader. */
export interface MetadataSnapshot {
  readonly tenants: Map<string, StoredTenant>;
  /** The bucket's last sequence the snapshot reflects (the compare-and-set token). */
  readonly revision: number;
}

const isWrongLastSequence = (e: unknown): boolean => /wrong last sequence|key exists|10071/i.test((e as Error).message);

export class MetadataStore {
  private readonly js: JetStreamClient | undefined;
  private jsm: JetStreamManager | undefined;

  /** Without `nc` writes fall back to per-key compare-and-set (safe on a single server only). */
  constructor(
    private readonly kv: KV,
    private readonly nc?: NatsConnection,
  ) {
    this.js = nc ? jetstream(nc) : undefined;
  }

  static async open(nc: NatsConnection, replicas = 1): Promise<MetadataStore> {
    return new MetadataStore(await openConfigBucket(nc, replicas), nc);
  }

  /**
   * Every tenant and the bucket revision they are current at, read message by
   * message from the stream leader (direct gets may come from a lagging replica).
   */
  async snapshot(): Promise<MetadataSnapshot> {
    if (!this.nc) throw new Error("MetadataStore.snapshot needs the NATS connection (use MetadataStore.open)");
    const jsm = (this.jsm ??= await jetstreamManager(this.nc));
    const stream = `KV_${KV_CONFIG}`;
    const prefix = `$KV.${KV_CONFIG}.`;
    for (let attempt = 0; ; attempt++) {
      const revision = (await jsm.streams.info(stream)).state.last_seq;
      const latest = new Map<string, { data: Uint8Array; seq: number } | undefined>();
      let moved = false;
      for (let seq = 1; ; ) {
        const sm = await jsm.streams.getMessage(stream, { seq, next_by_subj: `${prefix}${TENANT_PREFIX}>` } as unknown as { seq: number });
        if (!sm) break;
        if (sm.seq > revision) {
          moved = true; // written while we read: the snapshot would mix revisions
          break;
        }
        const op = sm.header?.get("KV-Operation") ?? "";
        latest.set(sm.subject.slice(prefix.length), op === "DEL" || op === "PURGE" ? undefined : { data: sm.data, seq: sm.seq });
        seq = sm.seq + 1;
      }
      if (moved && attempt < 5) continue;
      const tenants = new Map<string, StoredTenant>();
      for (const v of latest.values()) {
        if (!v) continue;
        const spec = parseTenantSpec(JSON.parse(new TextDecoder().decode(v.data)));
        tenants.set(spec.name, { spec, revision: v.seq });
      }
      return { tenants, revision };
    }
  }

  async tenants(): Promise<Map<string, StoredTenant>> {
    const out = new Map<string, StoredTenant>();
    const keys: string[] = [];
    for await (const k of await this.kv.keys(`${TENANT_PREFIX}>`)) keys.push(k);
    for (const key of keys) {
      const e = await this.kv.get(key);
      if (!e || e.operation !== "PUT") continue;
      const spec = parseTenantSpec(e.json());
      out.set(spec.name, { spec, revision: e.revision });
    }
    return out;
  }

  /**
   * Writes each tenant with compare-and-set against `expected` (the revisions the
   * caller read; 0 = must not exist). Throws MetadataConflictError if another
   * writer changed one of these tenants first.
   */
  async apply(spec: ClusterSpec, expected: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    if (!this.js) return this.applyPerKey(spec, expected);
    const want = new Map(expected);
    const out = new Map<string, number>();
    let pending = [...spec.tenants];
    for (let attempt = 0; attempt < 10 && pending.length > 0; attempt++) {
      const snap = await this.snapshot();
      for (const t of pending) {
        const rev = want.get(t.name) ?? 0;
        const current = snap.tenants.get(t.name)?.revision ?? 0;
        if (current !== rev) throw this.conflict(t.name, rev);
      }
      let last = snap.revision;
      try {
        for (const t of [...pending]) {
          const ack = await this.js.publish(`$KV.${KV_CONFIG}.${tenantConfigKey(t.name)}`, JSON.stringify(t), { expect: { lastSequence: last } });
          last = ack.seq;
          out.set(t.name, ack.seq);
          want.set(t.name, ack.seq); // ours now: a retry must not call our own write a conflict
          pending = pending.filter((p) => p.name !== t.name);
        }
      } catch (e) {
        // Someone wrote px_config since the snapshot (maybe another tenant): look again.
        if (!isWrongLastSequence(e)) throw e;
      }
    }
    if (pending.length > 0) {
      throw new MetadataConflictError(`px_config kept changing while tenants ${pending.map((t) => t.name).join(", ")} were being written; apply again`);
    }
    return out;
  }

  private conflict(tenant: string, rev: number, cause?: unknown): MetadataConflictError {
    return new MetadataConflictError(
      `tenant ${tenant} was changed by someone else since revision ${rev}; read the current spec (pxctl get tenants) and apply again`,
      cause === undefined ? undefined : { cause },
    );
  }

  /** Per-key compare-and-set (kv.update): only linearizable on a single server. */
  private async applyPerKey(spec: ClusterSpec, expected: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const t of spec.tenants) {
      const key = tenantConfigKey(t.name);
      const body = JSON.stringify(t);
      const rev = expected.get(t.name) ?? 0;
      try {
        out.set(t.name, rev === 0 ? await this.kv.create(key, body) : await this.kv.update(key, body, rev));
      } catch (e) {
        if (isWrongLastSequence(e)) throw this.conflict(t.name, rev, e);
        throw e;
      }
    }
    return out;
  }

  /** Applies `spec` against the revisions found now (last writer wins within this call only). */
  async applyCurrent(spec: ClusterSpec): Promise<Map<string, number>> {
    const current = this.nc ? (await this.snapshot()).tenants : await this.tenants();
    return this.apply(spec, new Map([...current].map(([k, v]) => [k, v.revision])));
  }
}
