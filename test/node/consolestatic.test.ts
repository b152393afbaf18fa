// The console's files on the node: index.html uncached, hashed assets cached
// for good, a path out of the bundle refused, and a missing bundle answered
// with the command that builds it.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { consoleRoutes } from "../../src/node/console/index.js";

const req = {} as IncomingMessage;
const get = (routes: ReturnType<typeof consoleRoutes>, key: string, path: string, method = "GET") => routes[key]!(new URL(path, "http://x"), method, req);

describe("console files", () => {
  const dir = mkdtempSync(join(tmpdir(), "px-console-"));
  mkdirSync(join(dir, "assets"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>x</title>");
  writeFileSync(join(dir, "assets/index-abc.js"), "console.log(1)");
  writeFileSync(join(dir, "assets/index-abc.css"), "body{}");
  const routes = consoleRoutes(dir);

  it("console files - index.html and assets with their types and caching", async () => {
    const index = await get(routes, "/", "/");
    expect([index.status, index.type, index.headers?.["cache-control"]]).toEqual([200, "text/html; charset=utf-8", "no-cache"]);
    const js = await get(routes, "/assets/*", "/assets/index-abc.js");
    expect([js.status, js.type, js.headers?.["cache-control"]]).toEqual([200, "text/javascript; charset=utf-8", "public, max-age=31536000, immutable"]);
    expect((await get(routes, "/assets/*", "/assets/index-abc.css")).type).toBe("text/css; charset=utf-8");
  });

  it("console files - unknown files, paths out of the bundle and writes are refused", async () => {
    expect((await get(routes, "/assets/*", "/assets/nope.js")).status).toBe(404);
    expect((await get(routes, "/assets/*", "/assets/..%2F..%2Fetc%2Fpasswd")).status).toBe(404);
    expect((await get(routes, "/", "/", "POST")).status).toBe(405);
  });

  it("console files - a missing bundle is a 503 naming the command that builds it", async () => {
    const r = await get(consoleRoutes(join(dir, "none")), "/", "/");
    expect(r.status).toBe(503);
    expect(String(r.body)).toContain("npm run build:console");
  });
});
