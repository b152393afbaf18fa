// The node's HTTP endpoints: /healthz (process up), /readyz (NATS connected, the
// catalog loaded, no full WAL and no WAL gap: each problem named in the body), /metrics (Prometheus text format), plus JSON routes the
// node adds (shardRoutes: /v1/shards, /v1/snapshot).
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { IncomingMessage, RequestListener, Server } from "node:http";
import { createServer as createTlsServer } from "node:https";
import { shardLagMs } from "./shard/host.js";
import type { LocalShardHost } from "./shard/host.js";

export interface HttpReply {
  readonly status: number;
  readonly body: string | Uint8Array;
  readonly type?: string;
  /** More response headers (Retry-After, result metadata). */
  readonly headers?: Readonly<Record<string, string>>;
}

/** Who passed an admin route's gate: the admin token's tenant and table grants. */
export interface AdminCaller {
  readonly tenant: string;
  readonly tables?: readonly string[] | undefined;
}

/** `req` for routes that read the body or headers; `caller` for admin routes. A route key ending in "/*" serves every path under it. */
export type Route = (url: URL, method: string, req: IncomingMessage, caller?: AdminCaller) => Promise<HttpReply>;

const routeOf = (routes: Record<string, Route> | undefined, path: string): Route | undefined =>
  routes?.[path] ?? Object.entries(routes ?? {}).find(([k]) => k.endsWith("/*") && path.startsWith(k.slice(0, -1)))?.[1];

export interface HttpHandlers {
  ready(): boolean;
  /** Conditions that stop the node doing its job (a full WAL, a WAL gap): each makes /readyz 503 and is named in its body. */
  problems?(): readonly string[];
  /** The exposition text (prom-client renders it asynchronously). */
  metrics(): string | Promise<string>;
  routes?: Record<string, Route>;
  /** Routes that change state: each call must pass `authorize` (an admin token); health, metrics and reads stay open on loopback. */
  adminRoutes?: ReadonlySet<string>;
  /** Resolves with a refusal (401/403 and why), or the caller to let the call through. */
  authorize?(authorization: string | undefined): Promise<HttpReply | AdminCaller>;
}

/** PEM files of the HTTPS server (the same certificate and key as gRPC/Flight: PX_TLS_CERT, PX_TLS_KEY). */
export interface HttpTlsFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * `host`: 127.0.0.1 unless asked; a container binds 0.0.0.0 so its published port reaches the server.
 * `tls`: HTTPS only (a plaintext request on the port fails its handshake); the files are read once, here.
 */
export async function startHttp(port: number, h: HttpHandlers, host = "127.0.0.1", tls?: HttpTlsFiles): Promise<{ server: Server; port: number }> {
  const handler: RequestListener = (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    const route = routeOf(h.routes, path);
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else if (path === "/readyz") {
      const problems = h.problems?.() ?? [];
      const ok = h.ready() && problems.length === 0;
      res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" }).end(ok ? "ready\n" : `not ready\n${problems.map((p) => `${p}\n`).join("")}`);
    } else if (path === "/metrics") {
      Promise.resolve(h.metrics()).then(
        (text) => res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text),
        (e: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`metrics failed: ${(e as Error).message}\n`),
      );
    } else if (route) {
      const admin = h.adminRoutes?.has(path) === true;
      // An admin route without an authorizer is refused: fail closed.
      const closed: HttpReply = { status: 403, body: JSON.stringify({ error: `${path} is an admin route and this node checks no tokens` }) };
      const gate: Promise<HttpReply | AdminCaller | undefined> = admin ? (h.authorize?.(req.headers.authorization) ?? Promise.resolve(closed)) : Promise.resolve(undefined);
      gate.then((g) => (g !== undefined && "status" in g ? g : route(url, req.method ?? "GET", req, g))).then(
        (r) => res.writeHead(r.status, { "content-type": r.type ?? "application/json", ...r.headers }).end(r.body),
        (e: unknown) => res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ error: (e as Error).message })),
      );
    } else {
      res.writeHead(404, { "content-type": "text/plain" }).end(`not found: try /healthz, /readyz, /metrics${Object.keys(h.routes ?? {}).map((r) => `, ${r}`).join("")}\n`);
    }
  };
  const server: Server = tls === undefined ? createServer(handler) : createTlsServer({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, handler);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  return { server, port: typeof addr === "object" && addr ? addr.port : port };
}

/** The node's JSON routes over its shard host. */
export function shardRoutes(shards: LocalShardHost): Record<string, Route> {
  return {
    // Shard states and figures; ?digest=1 adds a digest of each hot set (tests compare it with a replay).
    // P, T_persisted, H, lag, the lag remediation step and the sink's state come with each shard (sink: null without ClickHouse).
    "/v1/shards": async (url) => ({
      status: 200,
      body: JSON.stringify(
        shards.all().map((h) => {
          const sink = h.sink?.status() ?? null;
          // Why a failed shard stopped (e.g. a WAL record it cannot read), with the way out.
          const error = h.runtime.actor.getSnapshot().context.error;
          return {
            ...h.shard,
            state: h.runtime.state,
            ...(error === undefined ? {} : { error }),
            ...h.runtime.stats,
            sinkState: sink?.state ?? "none",
            lagMs: shardLagMs(h, sink ?? undefined),
            // The lag remediation step (0 none ... 4 alert) and whether eviction by age is held for it.
            lagStep: h.lagStep,
            evictionHeld: h.runtime.evictionHeld,
            sink,
            ...(url.searchParams.get("digest") ? { digest: h.runtime.table.digest() } : {}),
          };
        }),
      ),
    }),
    // Snapshot now every shard of the admin token's tenant (and tables, if it has grants) on this node: before a planned restart.
    "/v1/snapshot": async (_url, method, _req, caller) => {
      if (method !== "POST") return { status: 405, body: JSON.stringify({ error: "use POST" }) };
      const mine = shards.all().filter((h) => caller !== undefined && h.shard.tenant === caller.tenant && (caller.tables === undefined || caller.tables.includes(h.shard.table)));
      const lsns = await Promise.all(mine.map(async (h) => ({ ...h.shard, lsn: await h.runtime.snapshotNow() })));
      return { status: 200, body: JSON.stringify(lsns) };
    },
  };
}
