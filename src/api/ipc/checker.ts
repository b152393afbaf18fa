// Stream-level rules for ingested Arrow IPC: one schema first, dictionaries
// only for ids the schema declares, bounded dictionary and decompressed sizes.
// Used per message by DoPut and over a whole payload by gRPC Ingest.
import type { ApiLimits } from "../limits.js";
import { LimitExceeded } from "../limits.js";
import { checkDecompressedSize } from "./compression.js";
import { IpcError } from "./errors.js";
import { splitIpcStream } from "./framing.js";
import type { CheckedMessage } from "./framing.js";

interface DictionarySize {
  entries: number;
  bytes: number;
}

export class IpcStreamChecker {
  private schemaSeen = false;
  private readonly dictionaryIds = new Set<number>();
  /** Current size per dictionary id: a replacement resets it, a delta adds to it. */
  private readonly dictionaries = new Map<number, DictionarySize>();
  /** Some dictionary or record batch so far was compressed. */
  compressed = false;

  constructor(
    private readonly limits: ApiLimits,
    private readonly what: string,
  ) {}

  get hasSchema(): boolean {
    return this.schemaSeen;
  }

  /** Checks the next message of the stream; throws IpcError or LimitExceeded. */
  accept(m: CheckedMessage): void {
    const info = m.info;
    if (info.type !== "schema" && info.batch.compression !== undefined) this.compressed = true;
    if (info.type === "schema") {
      if (this.schemaSeen) throw new IpcError(`${this.what}: a second schema message; an Arrow IPC stream has exactly one schema, first`);
      this.schemaSeen = true;
      for (const id of info.dictionaryIds) this.dictionaryIds.add(id);
      return;
    }
    if (!this.schemaSeen) throw new IpcError(`${this.what}: a ${info.type === "recordBatch" ? "record" : "dictionary"} batch came before the schema; send the schema message first`);
    if (info.type === "dictionaryBatch") {
      if (!this.dictionaryIds.has(info.id)) throw new IpcError(`${this.what}: dictionary batch for id ${info.id}, which no field of the schema uses`);
      const bytes = checkDecompressedSize(info.batch, m.body, this.limits, this.what);
      const prev = info.isDelta ? (this.dictionaries.get(info.id) ?? { entries: 0, bytes: 0 }) : { entries: 0, bytes: 0 };
      this.dictionaries.set(info.id, { entries: prev.entries + info.batch.rows, bytes: prev.bytes + bytes });
      let entries = 0;
      let total = 0;
      for (const d of this.dictionaries.values()) {
        entries += d.entries;
        total += d.bytes;
      }
      if (entries > this.limits.maxDictionaryEntries) {
        throw new LimitExceeded("maxDictionaryEntries", `${this.what}: the dictionary entries of the stream`, entries, this.limits.maxDictionaryEntries, "send symbols as plain strings or in smaller batches");
      }
      if (total > this.limits.maxDictionaryBytes) {
        throw new LimitExceeded("maxDictionaryBytes", `${this.what}: the dictionary bytes of the stream`, total, this.limits.maxDictionaryBytes, "send symbols as plain strings or in smaller batches");
      }
      return;
    }
    checkDecompressedSize(info.batch, m.body, this.limits, this.what);
  }
}

export interface PayloadSummary {
  readonly rows: number;
  /** true when some batch is compressed (decompressPayload before ingesting) */
  readonly compressed: boolean;
}

/** Checks a whole ingest payload (one IPC stream) before it is decoded. */
export function checkIngestPayload(bytes: Uint8Array, limits: ApiLimits, what: string): PayloadSummary {
  if (bytes.length === 0) throw new IpcError(`${what}: the Arrow IPC payload is empty; send one Arrow IPC stream (schema + record batches)`);
  const checker = new IpcStreamChecker(limits, what);
  let rows = 0;
  for (const m of splitIpcStream(bytes, limits, what)) {
    checker.accept(m);
    if (m.info.type === "recordBatch") {
      rows += m.info.batch.rows;
      if (rows > limits.maxBatchRows) {
        throw new LimitExceeded("maxBatchRows", `${what}: the rows of one ingest batch`, rows, limits.maxBatchRows, "split it into smaller batches");
      }
    }
  }
  if (!checker.hasSchema) throw new IpcError(`${what}: the payload has no schema message; send one Arrow IPC stream (schema + record batches)`);
  return { rows, compressed: checker.compressed };
}
