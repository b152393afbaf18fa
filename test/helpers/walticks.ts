// Every tick a tenant's WAL holds, decoded, with its (LSN, row) identity: the
// input of the DuckDB oracle (test/query/oracle.ts) in tests that ingest through
// real node processes.
import type { NatsConnection } from "@nats-io/transport-node";
import { parseWalSubject } from "../../protocols/subjects.js";
import { specAtVersion } from "../../protocols/tablespec.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeTickBatch } from "../../src/codec/arrow.js";
import { readWal } from "./wal.js";

export interface WalTick {
  readonly table: string;
  readonly sym: string;
  readonly ts: number;
  readonly lsn: number;
  readonly row: number;
  readonly values: readonly number[];
}

export interface WalTicks {
  readonly ticks: WalTick[];
  /** LSN of every WAL record of the tables asked for. */
  readonly lsns: Set<number>;
  /** Nats-Msg-Id of records stored more than once (a retried batch the WAL's dedup let through). */
  readonly duplicateMsgIds: string[];
  readonly maxLsn: number;
}

export async function walTicks(nc: NatsConnection, tenant: string, specs: readonly TableSpec[]): Promise<WalTicks> {
  const ticks: WalTick[] = [];
  const lsns = new Set<number>();
  const seen = new Set<string>();
  const duplicateMsgIds: string[] = [];
  let maxLsn = 0;
  for (const r of await readWal(nc, tenant)) {
    maxLsn = Math.max(maxLsn, r.lsn);
    if (r.msgId !== undefined) {
      if (seen.has(r.msgId)) duplicateMsgIds.push(r.msgId);
      seen.add(r.msgId);
    }
    const spec = specs.find((s) => s.name === parseWalSubject(r.subject)?.table);
    if (spec === undefined) continue;
    lsns.add(r.lsn);
    const b = decodeTickBatch(specAtVersion(spec, r.record.schemaVersion), r.record.payload, `wal ${r.lsn}`);
    for (let i = 0; i < b.rows; i++) ticks.push({ table: spec.name, sym: b.symbols[b.symbolIndex[i]!]!, ts: b.ts[i]!, lsn: r.lsn, row: i, values: b.values.map((v) => v[i]!) });
  }
  return { ticks, lsns, duplicateMsgIds, maxLsn };
}
