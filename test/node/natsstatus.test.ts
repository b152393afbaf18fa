// The node's NATS connection events in its log (src/node/natsstatus.ts): a
// disconnect and its reconnect each get a line; pings and reconnect attempts
// none; a burst of one kind one line per 10 s, saying how many more it hid.
import { describe, expect, it } from "vitest";
import type { Status } from "@nats-io/transport-node";
import { logConnectionEvents } from "../../src/node/natsstatus.js";

async function* events(list: readonly [number, Status][], clock: { t: number }): AsyncIterable<Status> {
  for (const [t, s] of list) {
    clock.t = t;
    yield s;
  }
}

describe("node NATS connection log", () => {
  it("natsstatus - disconnects and reconnects are logged, pings and attempts are not, bursts are counted", async () => {
    const clock = { t: 0 };
    const lines: string[] = [];
    const server = "127.0.0.1:4222";
    await logConnectionEvents(
      events(
        [
          [0, { type: "ping", pendingPings: 1 }],
          [1_000, { type: "disconnect", server }],
          [1_100, { type: "reconnecting" }],
          [1_300, { type: "reconnect", server }],
          [2_000, { type: "disconnect", server }],
          [3_000, { type: "disconnect", server }],
          [12_000, { type: "disconnect", server }],
          [12_500, { type: "error", error: new Error("Permissions Violation for Subscription") }],
          [13_000, { type: "close" }],
        ],
        clock,
      ),
      (l) => lines.push(l),
      () => clock.t,
    );
    expect(lines).toEqual([
      `NATS connection: disconnected from ${server} (reconnecting; if the server's log says "Slow Consumer", the node did not read for too long)`,
      `NATS connection: reconnected to ${server}`,
      `NATS connection: disconnected from ${server} (reconnecting; if the server's log says "Slow Consumer", the node did not read for too long) (and 2 more like it in the 11 s before)`,
      "NATS connection: server error: Permissions Violation for Subscription",
    ]);
  });
});
