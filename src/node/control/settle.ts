// The placement settle period from the environment (PX_PLACEMENT_SETTLE_MS):
// how long a node that joined or came back must stay live before the leader
// hands it shards of live owners (src/control/placement.ts says why 15 s).
import { PLACEMENT_SETTLE_MS } from "../../control/index.js";

/** PX_PLACEMENT_SETTLE_MS in ms; unset: PLACEMENT_SETTLE_MS. 0: a node that (re)joins takes its share at once. */
export function placementSettleMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_PLACEMENT_SETTLE_MS;
  if (raw === undefined || raw === "") return PLACEMENT_SETTLE_MS;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0) {
    throw new Error(`PX_PLACEMENT_SETTLE_MS=${raw}: must be a number of milliseconds >= 0 (how long a node that joined or came back stays live before it takes shards; 0: at once); unset it for the default ${PLACEMENT_SETTLE_MS}`);
  }
  return v;
}
