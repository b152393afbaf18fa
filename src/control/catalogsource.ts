// The desired specs as the controller consumes them: the px_config bucket
// watched through ControlKv (so a watcher stalled by a dead NATS server is
// caught up by the resync), decoded into a Catalog on every change.
import type { NatsConnection } from "@nats-io/transport-node";
import { KV_CONFIG } from "../../protocols/subjects.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { TenantSpec } from "../../protocols/tablespec.js";
import { catalogOf } from "../catalog.js";
import { openConfigBucket } from "./metadata.js";
import type { CatalogSource } from "./controllerio.js";
import { jsonValue } from "./kv.js";
import type { ControlKv } from "./kv.js";
import { natsControlKv } from "./natskv.js";

const TENANT_PREFIX = "tenant.";

export function catalogFromKv(kv: ControlKv): CatalogSource {
  return {
    watch: (onCatalog) => {
      const tenants = new Map<string, TenantSpec>();
      let synced = false;
      return kv.watch(
        (c) => {
          if (!c.key.startsWith(TENANT_PREFIX)) return;
          const name = c.key.slice(TENANT_PREFIX.length);
          if (c.value === undefined) tenants.delete(name);
          else {
            try {
              tenants.set(name, parseTenantSpec(jsonValue.decode(c.value)));
            } catch {
              return; // a spec this version cannot read: keep placing the previous one
            }
          }
          if (synced) onCatalog(catalogOf(tenants.values()));
        },
        () => {
          synced = true;
          onCatalog(catalogOf(tenants.values()));
        },
      );
    },
  };
}

/** Opens px_config the way MetadataStore does (same bucket settings) and watches it. */
export async function openCatalogSource(nc: NatsConnection, replicas = 1): Promise<CatalogSource> {
  return catalogFromKv(natsControlKv(nc, await openConfigBucket(nc, replicas), KV_CONFIG));
}
