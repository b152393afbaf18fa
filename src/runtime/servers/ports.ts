// Free TCP ports for servers that tests and dev runs start themselves.
// The kernel picks a port for a listener bound to port 0; we read it and close
// the listener. Another process may take the port before the server binds it,
// so callers that start servers retry with fresh ports on "address in use".
import { createServer } from "node:net";
import type { Server } from "node:net";

/** One free port on `host` (default 127.0.0.1), as chosen by the kernel. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen({ port: 0, host, exclusive: true }, () => {
      const address = server.address();
      if (address === null || typeof address === "string") {
        server.close();
        reject(new Error(`freePort: listener on ${host} has no TCP address`));
        return;
      }
      const { port } = address;
      server.close((err) => (err ? reject(err) : resolve(port)));
    });
  });
}

/**
 * `count` distinct free ports. All listeners stay open until every port is
 * chosen, so the kernel cannot hand the same port out twice.
 */
export async function freePorts(count: number, host = "127.0.0.1"): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      const server = createServer();
      server.unref();
      return new Promise<Server>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ port: 0, host, exclusive: true }, () => resolve(server));
      });
    }),
  );
  const ports = servers.map((s) => {
    const address = s.address();
    if (address === null || typeof address === "string") throw new Error(`freePorts: listener on ${host} has no TCP address`);
    return address.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
}
