// Request bodies with a size cap: a body over the cap is refused (413) as soon
// as it passes the cap, without buffering the rest.
import type { IncomingMessage } from "node:http";
import type { BytePool } from "../../codec/pool.js";
import { HttpRefusal } from "./reply.js";

/**
 * The whole body. With `pool` and a Content-Length, the chunks are copied into
 * a buffer from the pool (the caller releases it once nothing reads the body):
 * a fresh 100 KB-1 MB buffer per ingest body counts as external memory, which
 * V8 answers with full collections (src/codec/pool.ts).
 */
export function readBody(req: IncomingMessage, maxBytes: number, what: string, pool?: BytePool): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) return Promise.reject(new HttpRefusal(413, `${what} is ${declared} bytes, over the limit of ${maxBytes}; split it into smaller requests`));
  // Node's HTTP parser delivers exactly Content-Length bytes, never more.
  let into = pool !== undefined && declared > 0 && Number.isSafeInteger(declared) ? pool.acquire(declared) : undefined;
  const giveBack = (): void => {
    if (into !== undefined) pool!.release(into.buffer);
    into = undefined;
  };
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      if (size + c.length > maxBytes) {
        req.removeAllListeners("data");
        req.resume();
        giveBack();
        reject(new HttpRefusal(413, `${what} is over the limit of ${maxBytes} bytes; split it into smaller requests`));
        return;
      }
      if (into !== undefined && size + c.length > into.length) {
        // More than declared (a parser would not let it through; kept correct anyway): gather as chunks.
        parts.push(Buffer.from(into.subarray(0, size)));
        giveBack();
      }
      if (into !== undefined) into.set(c, size);
      else parts.push(c);
      size += c.length;
    });
    req.on("end", () => resolve(into !== undefined ? Buffer.from(into.buffer, 0, size) : Buffer.concat(parts)));
    req.on("error", (e) => {
      giveBack();
      reject(e);
    });
  });
}

/** The one media type a header names (parameters dropped, lower case). */
export const mediaType = (v: string | undefined): string => (v ?? "").split(";")[0]!.trim().toLowerCase();
