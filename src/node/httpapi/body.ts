// Request bodies with a size cap: a body over the cap is refused (413) as soon
// as it passes the cap, without buffering the rest.
import type { IncomingMessage } from "node:http";
import { HttpRefusal } from "./reply.js";

export function readBody(req: IncomingMessage, maxBytes: number, what: string): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? NaN);
  if (declared > maxBytes) return Promise.reject(new HttpRefusal(413, `${what} is ${declared} bytes, over the limit of ${maxBytes}; split it into smaller requests`));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        req.removeAllListeners("data");
        req.resume();
        reject(new HttpRefusal(413, `${what} is over the limit of ${maxBytes} bytes; split it into smaller requests`));
        return;
      }
      parts.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

/** The one media type a header names (parameters dropped, lower case). */
export const mediaType = (v: string | undefined): string => (v ?? "").split(";")[0]!.trim().toLowerCase();
