// Worker thread body of off-loop snapshots (./snapshotwriter.ts; one thread per
// process, kept for the next snapshot): receives the exported columns
// (transferred, not copied), encodes them chunk by chunk (zstd on libuv's
// thread pool, a few chunks at once, so compression uses every core), hashes as it goes, and posts each framed chunk back (transferred) for the
// main thread to stream into the object store; then the SHA-256 and figures.
import { createHash } from "node:crypto";
import { parentPort } from "node:worker_threads";
import type { TableSpec } from "../../../protocols/tablespec.js";
import type { HotTableColumns } from "../../hotset/index.js";
import { snapshotPartsAsync } from "../../snapshot/codec.js";

export interface SnapshotJob {
  readonly spec: TableSpec;
  readonly cols: HotTableColumns;
}

export type SnapshotWorkerMessage =
  | { readonly type: "part"; readonly bytes: Uint8Array }
  | { readonly type: "done"; readonly sha256: string; readonly chunkRows: number[]; readonly seamRows: number; readonly rows: number }
  | { readonly type: "error"; readonly message: string };

const port = parentPort;
if (port !== null) {
  // One job at a time: the writer sends the next one after the last one's `done` or `error`.
  const encode = async (job: SnapshotJob): Promise<void> => {
    try {
      const hash = createHash("sha256");
      // Chunks of 64 Ki rows: the first bytes reach the object store early, no part is huge.
      const parts = snapshotPartsAsync(job.spec, job.cols, 1 << 16);
      let r = await parts.next();
      while (r.done !== true) {
        hash.update(r.value);
        const bytes = r.value;
        // A small Buffer lives in Node's shared pool: that one is copied, a whole buffer is handed over.
        const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
        port.postMessage({ type: "part", bytes } satisfies SnapshotWorkerMessage, whole ? [bytes.buffer as ArrayBuffer] : []);
        r = await parts.next();
      }
      port.postMessage({ type: "done", sha256: hash.digest("hex"), ...r.value } satisfies SnapshotWorkerMessage);
    } catch (e) {
      port.postMessage({ type: "error", message: (e as Error).message } satisfies SnapshotWorkerMessage);
    }
  };
  port.on("message", (job: SnapshotJob) => void encode(job));
}
