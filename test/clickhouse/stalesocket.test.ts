// The ClickHouse HTTP client over a kept-alive socket the server dropped (a
// restart, or a keep-alive timeout that ran out while the process was paused):
// a read is sent again on a fresh connection; an INSERT is not (it fails as
// possibly landed, and the sink asks ClickHouse what landed).
import { createServer } from "node:http";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ClickhouseHttp, ClickhouseUnavailableError } from "../../src/clickhouse/index.js";

let server: Server | undefined;
afterEach(async () => {
  await new Promise((r) => server?.close(r) ?? r(undefined));
  server = undefined;
});

/** A server answering the first request of each connection and dropping the connection on the second. */
async function droppingServer(): Promise<{ url: string; requests: () => number }> {
  let requests = 0;
  const perSocket = new WeakMap<object, number>();
  server = createServer((req, res) => {
    requests++;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    req.resume();
    req.on("end", () => {
      if (n > 1) {
        req.socket.destroy();
        return;
      }
      res.writeHead(200, { "Content-Type": "text/plain", Connection: "keep-alive" });
      res.end("1\n");
    });
  });
  await new Promise<void>((r) => server!.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, requests: () => requests };
}

describe("ClickHouse HTTP - stale kept-alive sockets", () => {
  it("a read on a socket the server dropped is sent once more on a fresh connection", async () => {
    const s = await droppingServer();
    const ch = new ClickhouseHttp({ url: s.url, idleSocketTtlMs: 60_000 });
    expect(await ch.query("SELECT 1")).toBe("1\n");
    expect(await ch.query("SELECT 1")).toBe("1\n");
    expect(s.requests()).toBe(3);
    ch.close();
  });

  it("an INSERT on such a socket is not sent again: it fails as possibly landed", async () => {
    const s = await droppingServer();
    const ch = new ClickhouseHttp({ url: s.url, idleSocketTtlMs: 60_000 });
    await ch.query("SELECT 1");
    const err = await ch.insert("INSERT INTO t FORMAT RowBinary", new Uint8Array([1, 2, 3])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClickhouseUnavailableError);
    expect((err as ClickhouseUnavailableError).mayHaveLanded).toBe(true);
    expect(s.requests()).toBe(2);
    ch.close();
  });
});
