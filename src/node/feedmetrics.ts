// Materialized feeds' Prometheus figures, read on each scrape from the feeds
// this node runs (GET /v1/feeds shows the same): how far each folded and
// published, where its last checkpoint stands (the WAL is held from there),
// whether its last checkpoint failed, and whether it failed. Labels: tenant
// and feed name. Each family resets before it is filled, so a feed that
// stopped or moved leaves no stale series.
import { Gauge } from "prom-client";
import type { Registry } from "prom-client";
import type { FeedView } from "./feed/routes.js";

const FIGURES: readonly (readonly [string, string, (v: FeedView) => number])[] = [
  ["px_feed_folded_lsn", "The WAL LSN a materialized feed has folded up to", (v) => v.foldedLsn],
  ["px_feed_published_lsn", "The WAL LSN the feed stream's last message covers", (v) => v.publishedLsn],
  ["px_feed_checkpoint_lsn", "The LSN the feed's last checkpoint covers (its tables' WAL is held from the next record; 0: none)", (v) => v.checkpointLsn],
  ["px_feed_checkpoint_bytes", "Size of the feed's last checkpoint", (v) => v.checkpointBytes],
  ["px_feed_checkpoint_failing", "1 while the feed's last checkpoint could not be saved or read", (v) => (v.checkpointError === undefined ? 0 : 1)],
  ["px_feed_failed", "1 when the feed stopped on an error (GET /v1/feeds names it)", (v) => (v.state === "failed" ? 1 : 0)],
];

export function feedFamilies(registry: Registry, feeds: () => readonly FeedView[]): void {
  for (const [name, help, value] of FIGURES) {
    new Gauge({
      name,
      help,
      labelNames: ["tenant", "feed"],
      registers: [registry],
      collect() {
        this.reset();
        for (const v of feeds()) this.set({ tenant: v.tenant, feed: v.name }, value(v));
      },
    });
  }
}
