// The node's HTTP endpoints: /healthz (process up), /readyz (NATS connected and
// the catalog loaded), /metrics (Prometheus text format).
import { createServer } from "node:http";
import type { Server } from "node:http";

export interface HttpHandlers {
  ready(): boolean;
  metrics(): string;
}

export async function startHttp(port: number, h: HttpHandlers): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const ok = h.ready();
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ready\n" : "not ready\n");
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(h.metrics());
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: try /healthz, /readyz or /metrics\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : port };
}

/** Prometheus exposition of flat counters/gauges. */
export function promText(metrics: Record<string, { help: string; type: "counter" | "gauge"; value: number }>): string {
  let out = "";
  for (const [name, m] of Object.entries(metrics)) {
    out += `# HELP ${name} ${m.help}\n# TYPE ${name} ${m.type}\n${name} ${m.value}\n`;
  }
  return out;
}
