// The WAL's size rule: one WAL record is one NATS message, so it can never be
// bigger than the server's max_payload (8 MB in infra/nats/nats.conf) less the
// room its headers take. The gateway checks every record of a batch against it
// before appending any, so an oversize batch is refused whole (nothing of it is
// stored) instead of failing half-way and making the gateway look broken.
import type { WalAppendPlan } from "./plan.js";

/** Bytes kept free under max_payload for a record's headers (Nats-Msg-Id, batch digest, traceparent). */
export const WAL_HEADER_ROOM = 4096;

/** The largest WAL record (bytes) a server with this max_payload accepts. */
export const maxRecordBytes = (maxPayload: number): number => Math.max(0, maxPayload - WAL_HEADER_ROOM);

export interface OversizeRecord {
  readonly bucket: number;
  readonly bytes: number;
  readonly rows: number;
  readonly maxBytes: number;
  readonly message: string;
}

/**
 * The first record of `plans` too big for a server whose max_payload is
 * `maxPayload`, with the refusal naming the record, the limit and the fix;
 * undefined when every record fits (or the limit is unknown).
 */
export function oversizeRecord(tenant: string, table: string, plans: readonly WalAppendPlan[], maxPayload: number | undefined): OversizeRecord | undefined {
  if (maxPayload === undefined || !(maxPayload > 0)) return undefined;
  const maxBytes = maxRecordBytes(maxPayload);
  for (const p of plans) {
    const bytes = p.record.byteLength;
    if (bytes <= maxBytes) continue;
    // Rows that fit, with a 10% margin for per-record overhead (schema, dictionary).
    const fit = Math.max(1, Math.floor(((p.rows * maxBytes) / bytes) * 0.9));
    return {
      bucket: p.bucket,
      bytes,
      rows: p.rows,
      maxBytes,
      message:
        `tenant ${tenant} table ${table}: the batch's WAL record for bucket ${p.bucket} is ${bytes} bytes (${p.rows} rows), over the WAL record limit of ${maxBytes} bytes ` +
        `(the NATS server's max_payload ${maxPayload} less ${WAL_HEADER_ROOM} for headers); nothing of this batch was stored; ` +
        `send it as smaller batches (at most about ${fit} rows of this bucket per batch; TickPublisher splits by itself) or raise max_payload in the NATS server config`,
    };
  }
  return undefined;
}
