// Resource limits of the API server. Every incoming message is checked against
// them before anything is decoded or decompressed; exceeding one answers
// RESOURCE_EXHAUSTED with the limit's name, its value and what to do.
import { TaggedError } from "../../protocols/tagged.js";

export interface ApiLimits {
  /** Bytes of one gRPC message (an ingest batch, a FlightData). */
  readonly maxMessageBytes: number;
  /** Rows of one ingested batch (all record batches of one Ingest message or one DoPut batch). */
  readonly maxBatchRows: number;
  /** Fields of an ingested schema, nested fields included. */
  readonly maxColumns: number;
  /** Dictionary entries over all dictionaries of one ingested stream. */
  readonly maxDictionaryEntries: number;
  /** Dictionary body bytes over all dictionaries of one ingested stream. */
  readonly maxDictionaryBytes: number;
  /** Bytes a compressed record batch may decompress to (checked before decompressing). */
  readonly maxDecompressedBytes: number;
  /** IPC messages in one Ingest payload. */
  readonly maxIpcMessages: number;
  /** Batches of one call being stored at the same time (later ones wait: back-pressure). */
  readonly maxInFlightBatches: number;
  /** Rows per streamed query chunk / DoGet record batch. */
  readonly maxChunkRows: number;
  /**
   * Column bytes per chunk: a wide result gets fewer rows per chunk, so every
   * message stays under the 4 MiB that grpc-js and most gRPC clients accept by default.
   */
  readonly maxChunkBytes: number;
  /** Milliseconds between re-checks of an open ingest stream's token (revocation and expiry end the stream). */
  readonly streamReauthMs: number;
}

export const DEFAULT_LIMITS: ApiLimits = {
  maxMessageBytes: 64 << 20,
  maxBatchRows: 1_000_000,
  maxColumns: 256,
  maxDictionaryEntries: 1_000_000,
  maxDictionaryBytes: 64 << 20,
  maxDecompressedBytes: 256 << 20,
  maxIpcMessages: 10_000,
  maxInFlightBatches: 16,
  maxChunkRows: 65_536,
  // 3 MiB of buffers leaves room for IPC metadata, padding and the gRPC framing under 4 MiB.
  maxChunkBytes: 3 << 20,
  streamReauthMs: 1_000,
};

export function resolveLimits(partial: Partial<ApiLimits> = {}): ApiLimits {
  const out = { ...DEFAULT_LIMITS, ...partial };
  for (const [k, v] of Object.entries(out)) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new RangeError(`API limit ${k} must be a positive integer, got ${v}`);
  }
  return out;
}

export type LimitName = keyof ApiLimits;

/** A request went over a limit. `message` names the limit, the value seen and the fix. */
export class LimitExceeded extends TaggedError("LimitExceeded") {
  readonly code = "RESOURCE_EXHAUSTED";
  constructor(
    readonly limit: LimitName,
    what: string,
    got: number,
    max: number,
    fix: string,
  ) {
    super(`${what} is ${got}, over the server limit ${limit} = ${max}; ${fix}`);
  }
}
