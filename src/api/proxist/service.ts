// The proxist.v1.Proxist implementation: wires each RPC to its handler.
import type { UntypedServiceImplementation } from "@grpc/grpc-js";
import type { ApiContext } from "../context.js";
import { ingestHandler } from "./ingest.js";
import { queryHandler } from "./query.js";
import { statusHandler } from "./status.js";
import { subscribeHandler } from "./subscribe.js";
import { adminService } from "./admin.js";

export function proxistService(ctx: ApiContext): UntypedServiceImplementation {
  return {
    ingest: ingestHandler(ctx),
    query: queryHandler(ctx),
    status: statusHandler(ctx),
  } as UntypedServiceImplementation;
}

/** proxist.v1.ProxistFeeds: ad-hoc subscription feeds. */
export function feedsService(ctx: ApiContext): UntypedServiceImplementation {
  return { subscribe: subscribeHandler(ctx) } as UntypedServiceImplementation;
}

/** proxist.v1.ProxistAdmin: spec apply, API tokens and NATS credentials for a tenant's admins. */
export function adminRpcs(ctx: ApiContext): UntypedServiceImplementation {
  return adminService(ctx) as UntypedServiceImplementation;
}
