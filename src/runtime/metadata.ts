// Metadata store: desired state (tenant specs) in the JetStream KV bucket
// px_config. Every write is a compare-and-set on the revision the writer read,
// so two concurrent applies cannot silently overwrite each other.
import type { NatsConnection } from "@nats-io/transport-node";
import { Kvm } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { KV_CONFIG, tenantConfigKey } from "../../protocols/subjects.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TenantSpec } from "../../protocols/tablespec.js";
import { catalogOf } from "../catalog.js";
import type { Catalog } from "../catalog.js";

export class MetadataConflictError extends Error {
  override readonly name = "MetadataConflictError";
  readonly _tag = "MetadataConflictError";
}

export interface StoredTenant {
  readonly spec: TenantSpec;
  readonly revision: number;
}

const TENANT_PREFIX = "tenant.";

export async function openConfigBucket(nc: NatsConnection, replicas = 1): Promise<KV> {
  return new Kvm(nc).create(KV_CONFIG, { history: 10, replicas });
}

export class MetadataStore {
  constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, replicas = 1): Promise<MetadataStore> {
    return new MetadataStore(await openConfigBucket(nc, replicas));
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
   * writer got there first.
   */
  async apply(spec: ClusterSpec, expected: ReadonlyMap<string, number>): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    for (const t of spec.tenants) {
      const key = tenantConfigKey(t.name);
      const body = JSON.stringify(t);
      const rev = expected.get(t.name) ?? 0;
      try {
        out.set(t.name, rev === 0 ? await this.kv.create(key, body) : await this.kv.update(key, body, rev));
      } catch (e) {
        const msg = (e as Error).message;
        if (/wrong last sequence|key exists|10071/i.test(msg)) {
          throw new MetadataConflictError(
            `tenant ${t.name} was changed by someone else since revision ${rev}; read the current spec (pxctl get tenants) and apply again`,
            { cause: e },
          );
        }
        throw e;
      }
    }
    return out;
  }

  /** Applies `spec` against the revisions found now (last writer wins within this call only). */
  async applyCurrent(spec: ClusterSpec): Promise<Map<string, number>> {
    const current = await this.tenants();
    return this.apply(spec, new Map([...current].map(([k, v]) => [k, v.revision])));
  }

  /** Calls `onCatalog` with the full catalog now and after every change, until the returned stop is called. */
  async watch(onCatalog: (catalog: Catalog) => void): Promise<() => void> {
    const tenants = new Map<string, TenantSpec>();
    const it = await this.kv.watch({ key: `${TENANT_PREFIX}>` });
    let initialDone = false;
    const emit = (): void => onCatalog(catalogOf(tenants.values()));
    // The watcher delivers current values first; emit once even when the bucket is empty.
    const initialTimer = setTimeout(() => {
      if (!initialDone) {
        initialDone = true;
        emit();
      }
    }, 200);
    void (async () => {
      for await (const e of it) {
        const name = e.key.slice(TENANT_PREFIX.length);
        if (e.operation === "PUT") {
          try {
            tenants.set(name, parseTenantSpec(e.json()));
          } catch {
            continue; // a spec this node cannot read: keep serving the previous one
          }
        } else {
          tenants.delete(name);
        }
        if (e.delta === 0 || initialDone) {
          initialDone = true;
          emit();
        }
      }
    })();
    return () => {
      clearTimeout(initialTimer);
      it.stop();
    };
  }
}
