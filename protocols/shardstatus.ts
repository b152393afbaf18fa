// One shard's status as its host reports it: in heartbeats (the ShardStatus
// message of control.proto), to the agent, in /v1/shards and `pxctl status`.
// LSNs are JetStream sequences, times in µs; every richer view extends this one.
import { create } from "@bufbuild/protobuf";
import { ShardStatusSchema } from "./gen/proxist/v1/control_pb.js";
import type { ShardStatus as ShardStatusMessage } from "./gen/proxist/v1/control_pb.js";

/** Names of the lag remediation steps, by number (ShardStatus.lagStep). */
export const LAG_STEP_NAMES = ["none", "bigger-batches", "hold-eviction", "move-sink", "alert"] as const;

export interface ShardStatus {
  readonly tenant: string;
  readonly table: string;
  readonly bucket: number;
  /** e.g. starting, recovering, replaying, live, draining, failed. */
  readonly state: string;
  readonly appliedLsn: number;
  /** P: the last LSN persisted to ClickHouse (the watermark the hot set evicts against). */
  readonly persistedLsn: number;
  readonly tPersistedMicros: number;
  readonly rows: number;
  readonly bytes: number;
  /** Records applied to the hot set and not yet persisted. */
  readonly lagRecords: number;
  /** The px_assign revision the shard was started with (fencing token); 0 when not under the control plane. */
  readonly leaseRevision: number;
  /** The sink's state (idle, flushing, backoff, degraded, ...); absent without ClickHouse or from an older node. */
  readonly sinkState?: string;
  /** Age of the sink's oldest unpersisted record (ms). */
  readonly lagMs?: number;
  /** Lag remediation step: 0 none, 1 bigger batches, 2 hold eviction, 3 move the sink, 4 alert. */
  readonly lagStep?: number;
}

/** The figures of a status (all but the shard and its state). */
export type ShardFigures = Omit<ShardStatus, "tenant" | "table" | "bucket" | "state">;

/** A status with the figures not known yet set to 0 (as a heartbeat carries them). */
export function shardStatus(shard: { readonly tenant: string; readonly table: string; readonly bucket: number }, state: string, figures: Partial<ShardFigures> = {}): ShardStatus {
  return {
    tenant: shard.tenant,
    table: shard.table,
    bucket: shard.bucket,
    state,
    appliedLsn: figures.appliedLsn ?? 0,
    persistedLsn: figures.persistedLsn ?? 0,
    tPersistedMicros: figures.tPersistedMicros ?? 0,
    rows: figures.rows ?? 0,
    bytes: figures.bytes ?? 0,
    lagRecords: figures.lagRecords ?? 0,
    leaseRevision: figures.leaseRevision ?? 0,
  };
}

/** To the control.proto message (only these fields go on the wire, whatever else `s` holds). */
export function shardStatusToMessage(s: ShardStatus): ShardStatusMessage {
  return create(ShardStatusSchema, {
    tenant: s.tenant,
    table: s.table,
    bucket: s.bucket,
    state: s.state,
    appliedLsn: BigInt(s.appliedLsn),
    persistedLsn: BigInt(s.persistedLsn),
    tPersistedMicros: BigInt(Math.trunc(s.tPersistedMicros)),
    rows: BigInt(s.rows),
    bytes: BigInt(s.bytes),
    lagRecords: BigInt(s.lagRecords),
    leaseRevision: BigInt(s.leaseRevision),
    sinkState: s.sinkState === undefined || s.sinkState === "none" ? "" : s.sinkState,
    sinkLagMs: BigInt(Math.max(0, Math.trunc(s.lagMs ?? 0))),
    lagStep: s.lagStep ?? 0,
  });
}

export function shardStatusFromMessage(m: ShardStatusMessage): ShardStatus {
  return {
    tenant: m.tenant,
    table: m.table,
    bucket: m.bucket,
    state: m.state,
    appliedLsn: Number(m.appliedLsn),
    persistedLsn: Number(m.persistedLsn),
    tPersistedMicros: Number(m.tPersistedMicros),
    rows: Number(m.rows),
    bytes: Number(m.bytes),
    lagRecords: Number(m.lagRecords),
    leaseRevision: Number(m.leaseRevision),
    ...(m.sinkState === "" ? {} : { sinkState: m.sinkState, lagMs: Number(m.sinkLagMs), lagStep: m.lagStep }),
  };
}
