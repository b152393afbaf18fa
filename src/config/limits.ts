// Byte limits of the JetStream stores Proxist creates. JetStream reserves a
// stream's max_bytes against the server's storage, so a WAL that fills up
// cannot take the space of the control-plane KV buckets or the snapshots:
// each store has its own bound and a full WAL refuses ingest by name (DiscardNew).
// Each can be overridden by an environment variable (bytes, or with K/M/G/T).
import { TaggedError } from "../../protocols/tagged.js";

export const STORE_LIMIT_ENV = {
  walMaxBytes: "PX_WAL_MAX_BYTES",
  snapshotMaxBytes: "PX_SNAPSHOT_MAX_BYTES",
  controlBucketMaxBytes: "PX_KV_MAX_BYTES",
} as const;

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface StoreLimits {
  /** Per tenant WAL stream. */
  readonly walMaxBytes: number;
  /** The px_snapshots object store (every shard's snapshots). */
  readonly snapshotMaxBytes: number;
  /** Each control-plane KV bucket (px_config, px_nodes, px_assign, px_leader, px_placement, px_tokens, px_creds, px_compaction). */
  readonly controlBucketMaxBytes: number;
}

export const DEFAULT_STORE_LIMITS: StoreLimits = { walMaxBytes: 2 * GiB, snapshotMaxBytes: 2 * GiB, controlBucketMaxBytes: 64 * MiB };

/** Bad value of a limit variable: names the variable, the value and the form. */
export class StoreLimitError extends TaggedError("StoreLimitError") {}

/** Parses "1073741824", "512M", "4G" (powers of 1024). */
export function parseBytes(name: string, text: string): number {
  const m = /^\s*(\d+)\s*([KMGT]i?B?)?\s*$/i.exec(text);
  if (m === null) throw new StoreLimitError(`${name}=${JSON.stringify(text)}: expected a byte count such as 1073741824, 512M or 4G`);
  const unit = (m[2] ?? "").charAt(0).toUpperCase();
  const mult = unit === "" ? 1 : unit === "K" ? 1024 : unit === "M" ? MiB : unit === "G" ? GiB : 1024 * GiB;
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n) || n < 1024) throw new StoreLimitError(`${name}=${JSON.stringify(text)}: must be at least 1024 bytes`);
  return n;
}

/** The limits, with each environment override applied. */
export function storeLimits(env: Record<string, string | undefined> = process.env): StoreLimits {
  const pick = (key: keyof StoreLimits): number => {
    const v = env[STORE_LIMIT_ENV[key]];
    return v === undefined || v === "" ? DEFAULT_STORE_LIMITS[key] : parseBytes(STORE_LIMIT_ENV[key], v);
  };
  return { walMaxBytes: pick("walMaxBytes"), snapshotMaxBytes: pick("snapshotMaxBytes"), controlBucketMaxBytes: pick("controlBucketMaxBytes") };
}

/**
 * Why JetStream refused to create a store, and the fix: a stream reserves its
 * max_bytes against the server's max_file_store up front, and that store is by
 * default 75% of the disk that was free when nats-server started.
 */
export function noRoomMessage(store: string, maxBytes: number, envVar: string): string {
  return (
    `JetStream refused to reserve ${maxBytes} bytes for ${store} (insufficient storage resources): every stream reserves its max_bytes ` +
    `against the server's JetStream store (max_file_store; by default 75% of the disk free when nats-server started, see its /jsz reserved_storage). ` +
    `Fix: lower ${envVar} (e.g. ${envVar}=512M), raise max_file_store in the jetstream block of nats-server's config, or free disk and restart nats-server`
  );
}

/** True for JetStream's refusal to reserve a new stream's limit (error 10047). */
export const isNoRoom = (e: unknown): boolean => /insufficient (storage )?resources/i.test((e as Error)?.message ?? "");
