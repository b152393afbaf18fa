// The web console's built files (vite, `npm run build:console` into
// dist/console) served at `/` by the node's HTTP server: index.html is never
// cached (it names the current assets), hashed assets are cached for a year.
// Files are read on each request, so a rebuild shows without a node restart.
import { readFile } from "node:fs/promises";
import { extname, join, normalize, resolve, sep } from "node:path";
import type { HttpReply, Route } from "../http.js";

/** dist/console of this checkout (src/node/console -> the repository root). */
export const DEFAULT_CONSOLE_DIR = resolve(import.meta.dirname, "../../../dist/console");

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".map": "application/json",
  ".wasm": "application/wasm",
  ".woff2": "font/woff2",
};

const text = (status: number, body: string): HttpReply => ({ status, type: "text/plain; charset=utf-8", body });

const missing = (dir: string): HttpReply =>
  text(503, `the web console is not built (no ${join(dir, "index.html")}).\nBuild it with \`npm run build:console\` (\`./proxist up\` and \`./proxist test\` build it when it is missing or stale), then reload.\nThe HTTP API (/v1/query, /v1/ingest/<table>, /v1/cluster) works without it.\n`);

/** Routes for `/`, `/index.html` and `/assets/*` over `dir` (default dist/console). */
export function consoleRoutes(dir: string = DEFAULT_CONSOLE_DIR): Record<string, Route> {
  const root = resolve(dir);
  const file = async (rel: string, method: string, immutable: boolean): Promise<HttpReply> => {
    if (method !== "GET" && method !== "HEAD") return { ...text(405, `${rel}: use GET`), headers: { allow: "GET, HEAD" } };
    const path = normalize(join(root, rel));
    // A path that climbs out of the bundle (/assets/../../etc) is not served.
    if (!path.startsWith(root + sep)) return text(404, `not found: ${rel}`);
    let body: Buffer;
    try {
      body = await readFile(path);
    } catch {
      if (rel === "index.html") return missing(root);
      return text(404, `not found: /${rel} (the console was rebuilt? reload the page)`);
    }
    const type = TYPES[extname(path)] ?? "application/octet-stream";
    return { status: 200, type, body, headers: { "cache-control": immutable ? "public, max-age=31536000, immutable" : "no-cache", "x-content-type-options": "nosniff" } };
  };
  const index: Route = (_url, method) => file("index.html", method, false);
  return {
    "/": index,
    "/index.html": index,
    "/assets/*": (url, method) => file(decodeURIComponent(url.pathname.slice(1)), method, true),
  };
}
