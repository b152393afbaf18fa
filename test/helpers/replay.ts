// The independent oracle for hot-set recovery: replay every record in the WAL
// into fresh hot tables, one per shard, and digest them.
import type { NatsConnection } from "@nats-io/transport-node";
import { parseWalSubject } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { HotTable } from "../../src/hotset/index.js";
import { applyWalRecord } from "../../src/shard/apply.js";
import { encodeWalRecord } from "../../protocols/codec.js";
import { readWal } from "./wal.js";

export interface ShardFigures {
  readonly appliedLsn: number;
  readonly rows: number;
  readonly digest: string;
}

export async function replayDigests(nc: NatsConnection, tenant: string, specs: readonly TableSpec[]): Promise<Map<string, ShardFigures>> {
  const tables = new Map<string, HotTable>();
  for (const spec of specs) for (let b = 0; b < spec.shards; b++) tables.set(`${tenant}.${spec.name}.${b}`, new HotTable(spec));
  for (const r of await readWal(nc, tenant)) {
    const a = parseWalSubject(r.subject)!;
    const t = tables.get(`${a.tenant}.${a.table}.${a.bucket}`)!;
    applyWalRecord(t, t.spec, { lsn: r.lsn, data: encodeWalRecord(r.record) });
  }
  return new Map([...tables].map(([k, t]) => [k, { appliedLsn: t.appliedLsn, rows: t.rowCount, digest: t.digest() }]));
}

export interface NodeShard {
  readonly tenant: string;
  readonly table: string;
  readonly bucket: number;
  readonly state: string;
  readonly appliedLsn: number;
  readonly rows: number;
  readonly digest?: string;
}

export async function nodeShards(httpPort: number, digest = false): Promise<Map<string, NodeShard>> {
  const res = await fetch(`http://127.0.0.1:${httpPort}/v1/shards${digest ? "?digest=1" : ""}`);
  const list = (await res.json()) as NodeShard[];
  return new Map(list.map((s) => [`${s.tenant}.${s.table}.${s.bucket}`, s]));
}

/** Polls until the node's shards have applied what the replay did. */
export async function waitCaughtUp(httpPort: number, expected: Map<string, ShardFigures>, timeoutMs = 30_000): Promise<Map<string, NodeShard>> {
  const deadline = Date.now() + timeoutMs;
  let last = new Map<string, NodeShard>();
  while (Date.now() < deadline) {
    last = await nodeShards(httpPort).catch(() => new Map());
    if ([...expected].every(([k, e]) => (last.get(k)?.appliedLsn ?? -1) >= e.appliedLsn && last.get(k)?.state.includes("live"))) return nodeShards(httpPort, true);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`node did not catch up: ${JSON.stringify([...last.values()])}`);
}
