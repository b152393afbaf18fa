// A TCP proxy on 127.0.0.1 that can be frozen: while frozen it passes nothing
// either way (what arrives is held), so a client behind it neither receives
// nor sends anything, as over a stalled network; on thaw what was held flows
// on in order. For one in-process client (e.g. one NATS connection) that must
// fall silent while the rest of the test goes on.
import { connect, createServer } from "node:net";
import type { Socket } from "node:net";

export interface TcpProxy {
  readonly port: number;
  freeze(): void;
  thaw(): void;
  close(): Promise<void>;
}

/** One direction of a proxied connection: writes `to` unless frozen, else holds. */
class Leg {
  readonly held: Buffer[] = [];
  constructor(readonly to: Socket) {}
  pass(d: Buffer, frozen: boolean): void {
    if (frozen) this.held.push(d);
    else this.to.write(d);
  }
  flush(): void {
    for (const d of this.held.splice(0)) this.to.write(d);
  }
}

export async function tcpProxy(targetPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const legs = new Set<Leg>();
  let frozen = false;
  const server = createServer((client) => {
    const upstream = connect(targetPort, "127.0.0.1");
    const up = new Leg(upstream);
    const down = new Leg(client);
    legs.add(up).add(down);
    client.on("data", (d: Buffer) => up.pass(d, frozen));
    upstream.on("data", (d: Buffer) => down.pass(d, frozen));
    for (const [s, other] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        legs.delete(up);
        legs.delete(down);
        other.destroy();
      });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as { port: number }).port,
    freeze: () => {
      frozen = true;
    },
    thaw: () => {
      frozen = false;
      for (const l of legs) l.flush();
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
