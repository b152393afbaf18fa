// The node's NATS connection as it goes. A disconnect stalls every shard,
// sink and feed of the node at once; nats-server also ends a connection whose
// unsent bytes pass its max_pending (64 MB) as a slow consumer, which looks the
// same from inside. So each disconnect and reconnect is logged, with the
// server's errors, lame-duck notices and the client's own slow-subscription
// and stale-connection reports: at most one line per kind per 10 s, saying how
// many more there were.
import type { Status } from "@nats-io/transport-node";

/** Kinds not worth a line: pings, the attempts between a disconnect and its reconnect, cluster updates, the close at stop. */
const QUIET = new Set<Status["type"]>(["ping", "reconnecting", "update", "close"]);
const EVERY_MS = 10_000;

function describe(s: Status): string {
  switch (s.type) {
    case "disconnect":
      return `disconnected from ${s.server} (reconnecting; if the server's log says "Slow Consumer", the node did not read for too long)`;
    case "reconnect":
      return `reconnected to ${s.server}`;
    case "ldm":
      return `${s.server} is going away (lame-duck mode)`;
    case "error":
      return `server error: ${s.error.message}`;
    case "slowConsumer":
      return `a subscription holds ${s.pending} messages not yet handled (subject ${s.sub.getSubject()})`;
    default:
      return s.type;
  }
}

/** Logs the connection's events until it closes; `now` is the clock (tests pass theirs). */
export async function logConnectionEvents(status: AsyncIterable<Status>, log: (line: string) => void, now: () => number = Date.now): Promise<void> {
  const last = new Map<string, { at: number; more: number }>();
  for await (const s of status) {
    if (QUIET.has(s.type)) continue;
    const t = now();
    const seen = last.get(s.type);
    if (seen !== undefined && t - seen.at < EVERY_MS) {
      seen.more++;
      continue;
    }
    log(`NATS connection: ${describe(s)}${seen !== undefined && seen.more > 0 ? ` (and ${seen.more} more like it in the ${Math.round((t - seen.at) / 1000)} s before)` : ""}`);
    last.set(s.type, { at: t, more: 0 });
  }
}
