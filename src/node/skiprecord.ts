// `pxctl shard skip-record`: the way out for a WAL record no reader can decode.
// The node hosting the shard checks that the record is the shard's and really
// cannot be read (a record that decodes is never skipped: its rows would be
// lost for nothing), stores the skip with its audit (KV px_walskips), records
// the event (`pxctl events`), and restarts the shard and its sink, which then
// read the record as one without rows and go on.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { compactionKey, walStream, walSubject } from "../../protocols/subjects.js";
import { WalSchemaVersionError, decodeWalEntry, recordEvent, recordWalSkip } from "../wal/index.js";
import type { HostedShard, LocalShardHost } from "./shard/host.js";

export interface SkipRecordIo {
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly nodeId: string;
  readonly shards: LocalShardHost;
  readonly replicas?: number;
}

export type SkipOutcome = { readonly ok: true; readonly message: string } | { readonly ok: false; readonly message: string };

export async function skipRecord(io: SkipRecordIo, h: HostedShard, lsn: number, reason: string): Promise<SkipOutcome> {
  const key = compactionKey(h.shard);
  const spec = h.runtime.spec;
  const jsm = await io.js.jetstreamManager();
  const m = await jsm.streams.getMessage(walStream(h.shard.tenant), { seq: lsn }).catch(() => null);
  if (m === null) return { ok: false, message: `shard ${key}: the WAL has no record at LSN ${lsn} (never written, or compacted); check the LSN in the shard's error (pxctl status, /v1/shards); nothing was changed` };
  const subject = walSubject(h.shard.tenant, h.shard.table, h.shard.bucket);
  if (m.subject !== subject) return { ok: false, message: `shard ${key}: the record at LSN ${lsn} is on ${m.subject}, not on this shard's ${subject}; give the shard whose error names this LSN; nothing was changed` };
  let error: string;
  try {
    const d = decodeWalEntry(spec, lsn, m.data);
    return { ok: false, message: `shard ${key}: the record at LSN ${lsn} decodes (${d.batch.rows} rows); skip-record only skips records that cannot be read, so nothing was changed` };
  } catch (e) {
    if (e instanceof WalSchemaVersionError) return { ok: false, message: `shard ${key}: ${e.message}; apply that spec (pxctl apply) instead of skipping the record; nothing was changed` };
    error = (e as Error).message;
  }
  const atMs = Date.now();
  await recordWalSkip(io.nc, h.shard, { shard: key, lsn, atMs, node: io.nodeId, reason, error }, io.replicas);
  const message = `shard ${key}: WAL record at LSN ${lsn} skipped by an operator (reason: ${reason}); it could not be read (${error}); whatever rows it held are not in the hot set or ClickHouse`;
  await recordEvent(io.js, { atMs, kind: "wal.record_skipped", node: io.nodeId, message });
  await io.shards.restart(h.shard);
  return { ok: true, message: `skipped the WAL record at LSN ${lsn} (${error}); the shard and its sink restarted past it; recorded in pxctl events` };
}
