// GET /v1/feeds: the materialized feeds this node runs, as an operator needs
// to see them: the actor's state, how far it folded and published, and its
// checkpoints (the last one's LSN is where the feed holds its tables' WAL from:
// a feed whose checkpoints keep failing holds the WAL until its limit refuses
// ingest, so the error is shown here as well as logged once).
import type { Route } from "../http.js";
import { offsetLsn } from "../../feed/index.js";
import type { FeedHost } from "./host.js";

/** One feed's line: what GET /v1/feeds answers per feed. */
export interface FeedView {
  readonly tenant: string;
  readonly name: string;
  readonly kind: string;
  readonly fingerprint: string;
  /** The actor's state, e.g. "recovering", "restoring", "running.replaying", "running.live", "failed". */
  readonly state: string;
  readonly error?: string;
  readonly foldedLsn: number;
  /** The highest LSN the stream's last message covers (0: none yet). */
  readonly publishedLsn: number;
  readonly published: number;
  readonly snapshots: number;
  readonly checkpointing: boolean;
  readonly checkpoints: number;
  readonly checkpointLsn: number;
  readonly checkpointBytes: number;
  readonly checkpointError?: string;
  readonly restoredFrom?: string;
}

export function feedViews(feeds: FeedHost): FeedView[] {
  return [...feeds.running].map(([key, rt]) => {
    const s = rt.actor.getSnapshot();
    const c = s.context;
    const st = c.stats;
    const state = s.matches("running") ? (s.matches({ running: { phase: "live" } }) ? "running.live" : "running.replaying") : String(s.value);
    return {
      tenant: c.feed.tenant,
      name: key.slice(c.feed.tenant.length + 1),
      kind: c.plan.kind,
      fingerprint: c.plan.fingerprint,
      state,
      ...(c.error === undefined ? {} : { error: c.error }),
      foldedLsn: st.foldedLsn,
      publishedLsn: st.publishedOffset === undefined ? 0 : offsetLsn(st.publishedOffset),
      published: st.published,
      snapshots: st.snapshots,
      checkpointing: c.checkpointIntervalMs > 0,
      checkpoints: st.checkpoints,
      checkpointLsn: st.checkpointLsn,
      checkpointBytes: st.checkpointBytes,
      ...(st.checkpointError === undefined ? {} : { checkpointError: st.checkpointError }),
      ...(st.restoredFrom === undefined ? {} : { restoredFrom: st.restoredFrom }),
    };
  });
}

/** The route (open like /v1/shards: the node's HTTP binds to loopback unless told otherwise). */
export function feedRoutes(feeds: FeedHost): Record<string, Route> {
  return { "/v1/feeds": async () => ({ status: 200, body: JSON.stringify(feedViews(feeds)) }) };
}
