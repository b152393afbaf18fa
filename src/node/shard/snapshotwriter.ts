// Snapshots that do not stop the node. The hot set is exported on the event
// loop in slices of a few milliseconds (series by series, rows up to the LSN
// the snapshot covers, so records applied in between are left out; if an
// eviction happens meanwhile the export starts over, after three tries it is
// done in one go). The columns are handed to a worker thread (transferred),
// which encodes and hashes them chunk by chunk; the chunks stream into the
// object store while ingest and queries go on. PX_SNAPSHOT_WORKER=off writes
// on the event loop as before (benchmarks compare the two).
import { setImmediate as yieldToLoop } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import type { ShardAddress } from "../../../protocols/subjects.js";
import type { HotTable, HotTableColumns, SeriesColumns } from "../../hotset/index.js";
import type { SnapshotStore, WrittenSnapshot } from "../../snapshot/store.js";
import type { SnapshotJob, SnapshotWorkerMessage } from "./snapshotworker.js";
import { TaggedError } from "../../../protocols/tagged.js";
import { workerEntry } from "../workerentry.js";

const SLICE_MS = 5;
const WORKER = workerEntry("snapshotworker", import.meta.url);

export const snapshotWorkerEnabled = (env: Record<string, string | undefined> = process.env): boolean => env.PX_SNAPSHOT_WORKER !== "off";

/** The table as of its applied LSN now, exported in slices between which the event loop runs. */
export async function exportInSlices(table: HotTable): Promise<HotTableColumns> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const appliedLsn = table.appliedLsn;
    const evictions = table.evictionCount;
    const persistedLsn = table.persistedLsn;
    const horizonMicros = table.horizonMicros;
    const count = table.symbolCount;
    const symbols: string[] = [];
    for (let id = 0; id < count; id++) symbols.push(table.symbolAt(id));
    const series: SeriesColumns[] = [];
    let sliceStart = performance.now();
    for (let id = 0; id < count; id++) {
      series.push(table.exportSeries(id, appliedLsn));
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToLoop();
        if (table.evictionCount !== evictions) break;
        sliceStart = performance.now();
      }
    }
    if (table.evictionCount === evictions && series.length === count) return { table: table.spec.name, appliedLsn, persistedLsn, horizonMicros, symbols, series };
  }
  // Evictions kept interleaving: one consistent copy in a single turn.
  return table.exportColumns();
}

function transferList(cols: HotTableColumns): ArrayBuffer[] {
  const seen = new Set<ArrayBuffer>();
  for (const s of cols.series) for (const a of [s.tsMicros, s.lsn, s.rowInRecord, ...s.values]) seen.add(a.buffer as ArrayBuffer);
  return [...seen];
}

type Done = Extract<SnapshotWorkerMessage, { type: "done" }>;

/**
 * The process's snapshot thread, started on first use and kept (starting one
 * loads the codec through tsx, which takes a second or more on a busy machine).
 * Jobs run one at a time; a thread that failed is replaced on the next job.
 */
class SnapshotThread {
  private worker: Worker | undefined;
  private queue: Promise<unknown> = Promise.resolve();

  /** Starts the thread if it is not running (loading the codec takes a while: done while the hot set is exported). */
  warm(): void {
    this.get();
  }

  private get(): Worker {
    if (this.worker === undefined) {
      const w = new Worker(WORKER.url, { execArgv: WORKER.execArgv });
      // Never keeps the process alive on its own.
      w.unref();
      w.on("exit", () => {
        if (this.worker === w) this.worker = undefined;
      });
      this.worker = w;
    }
    return this.worker;
  }

  /** Encodes `job` on the thread: the framed chunks as they come, then the summary. */
  encode(job: SnapshotJob): { parts: AsyncIterable<Uint8Array>; summary: Promise<Done> } {
    const chunks: Uint8Array[] = [];
    let wake: (() => void) | undefined;
    let finished = false;
    let failure: Error | undefined;
    let settle!: { resolve: (d: Done) => void; reject: (e: Error) => void };
    const summary = new Promise<Done>((resolve, reject) => (settle = { resolve, reject }));
    summary.catch(() => {});
    const run = (): Promise<void> =>
      new Promise<void>((release) => {
        const w = this.get();
        const end = (e?: Error): void => {
          if (finished) return;
          finished = true;
          failure = e;
          w.off("message", onMessage);
          w.off("error", onError);
          w.off("exit", onExit);
          if (e !== undefined) {
            settle.reject(e);
            if (this.worker === w) this.worker = undefined;
            void w.terminate();
          }
          wake?.();
          release();
        };
        const onMessage = (m: SnapshotWorkerMessage): void => {
          if (m.type === "part") {
            chunks.push(m.bytes);
            wake?.();
          } else if (m.type === "done") {
            settle.resolve(m);
            end();
          } else end(new SnapshotWorkerError(`snapshot worker: ${m.message}`));
        };
        const onError = (e: Error): void => end(e);
        const onExit = (code: number): void => end(new SnapshotWorkerError(`snapshot worker exited with code ${code} before it finished`));
        w.on("message", onMessage);
        w.on("error", onError);
        w.on("exit", onExit);
        w.postMessage(job, transferList(job.cols));
      });
    this.queue = this.queue.then(run, run);
    const parts: AsyncIterable<Uint8Array> = {
      async *[Symbol.asyncIterator]() {
        for (;;) {
          const next = chunks.shift();
          if (next !== undefined) {
            yield next;
            continue;
          }
          if (failure !== undefined) throw failure;
          if (finished) return;
          await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      },
    };
    return { parts, summary };
  }
}

/** The snapshot thread failed or died mid-job (the snapshot fails; the next one starts a new thread). */
export class SnapshotWorkerError extends TaggedError("SnapshotWorkerError") {}

const thread = new SnapshotThread();

/** Below this many rows a snapshot is encoded on the event loop: it takes a few ms, less than handing it over. */
const OFF_LOOP_MIN_ROWS = 100_000;

/** Writes a snapshot of `table` without holding the event loop for more than a slice at a time. */
export async function writeSnapshotOffLoop(snapshots: SnapshotStore, shard: ShardAddress, table: HotTable): Promise<WrittenSnapshot> {
  if (table.rowCount < OFF_LOOP_MIN_ROWS) return snapshots.write(shard, table);
  // The thread boots (a second or more the first time, under tsx) while this thread exports.
  thread.warm();
  const cols = await exportInSlices(table);
  const head = { appliedLsn: cols.appliedLsn, persistedLsn: cols.persistedLsn, horizonMicros: cols.horizonMicros, symbols: cols.symbols, schemaVersion: table.spec.version };
  const { parts, summary } = thread.encode({ spec: table.spec, cols });
  return snapshots.writeStream(shard, head, parts, summary);
}
