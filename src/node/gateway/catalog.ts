// The gateway machine's `catalog` actor over the node's one catalog: sends the
// served catalog now (once loaded) and on every change, until stopped.
import { fromCallback } from "xstate";
import type { EventObject } from "xstate";
import type { GatewayEvent } from "../../../actors/gateway.js";
import type { NodeCatalog } from "../../control/index.js";

export function catalogActor(catalog: Pick<NodeCatalog, "subscribe">) {
  return fromCallback<EventObject>(({ sendBack }) => catalog.subscribe((c) => sendBack({ type: "catalog", catalog: c } satisfies GatewayEvent)));
}
