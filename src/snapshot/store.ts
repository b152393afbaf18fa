// Snapshot store over the JetStream object store px_snapshots. Writes the data
// object first and the manifest last, so a manifest only ever names complete
// data; loads the newest snapshot whose checksums hold, falling back to older
// ones (and finally to none: full replay) when one is corrupt.
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import type { JetStreamClient } from "@nats-io/jetstream";
import { Objm, setSha256Backend } from "@nats-io/obj";
import type { ObjectStore } from "@nats-io/obj";
import { decodeSnapshotManifest, encodeSnapshotManifest } from "../../protocols/codec.js";
import type { SnapshotManifest } from "../../protocols/codec.js";
import { OBJ_SNAPSHOTS } from "../../protocols/subjects.js";
import type { ShardAddress } from "../../protocols/subjects.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { HotTable } from "../hotset/index.js";
import type { HotTableColumns } from "../hotset/index.js";
import { SNAPSHOT_DATA_FORMAT, decodeSnapshot, decodeStreamed, encodeSnapshot, sha256Hex, snapshotDataReader } from "./codec.js";
import type { SnapshotSummary } from "./codec.js";
import { getObject, putObject, readObject } from "./objects.js";
import { storeLimits } from "../config/limits.js";
import { sweepSnapshotLeftovers } from "./sweep.js";
import type { SweepResult } from "./sweep.js";

/**
 * Chunk size of snapshot data objects (one JetStream message per chunk). Small
 * enough that a chunk message mostly arrives in one or two of the socket's
 * 64 KiB reads: the NATS client gathers a message spanning more in a buffer it
 * grows by doubling into fresh memory, which on these machines (page faults at
 * ~2.5 ms per MB) made 1 MiB chunks load a 10 M-tick snapshot ~0.3 s slower
 * (measured 60 KiB: load 1.72 s; 128-256 KiB 1.8; 1 MiB 1.8-2.0; writes
 * 1.7-1.8 s at every size).
 */
const DATA_CHUNK_BYTES = 60 * 1024;

/**
 * Leftovers of unfinished writes (./sweep.ts) go once untouched this long
 * (PX_SNAPSHOT_SWEEP_GRACE_S, default 15 min, at least 60 s): a write in
 * progress publishes a chunk every few milliseconds and its manifest right
 * after its data, even on a busy machine; the floor leaves room for clocks
 * that differ between nodes and a server.
 */
export function sweepGraceMs(env: Record<string, string | undefined> = process.env): number {
  const raw = env.PX_SNAPSHOT_SWEEP_GRACE_S;
  if (raw === undefined) return 15 * 60_000;
  const s = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(s) || s < 60) throw new Error(`PX_SNAPSHOT_SWEEP_GRACE_S=${raw} is not a number of seconds >= 60; unset it for the default (900)`);
  return s * 1000;
}
/** A store sweeps at most this often (after a snapshot it wrote): the listing reads every object's info. */
const SWEEP_EVERY_MS = 10 * 60_000;

const prefix = (s: ShardAddress): string => `${s.tenant}.${s.table}.${s.bucket}.`;
const lsnKey = (lsn: number): string => String(lsn).padStart(20, "0");

export interface LoadedSnapshot {
  readonly table: HotTable;
  readonly manifest: SnapshotManifest;
}

/** What a snapshot's manifest says of the table, known before its data is encoded. */
export interface SnapshotHead {
  readonly appliedLsn: number;
  readonly persistedLsn: number;
  readonly horizonMicros: number;
  readonly symbols: readonly string[];
  readonly schemaVersion: number;
}

export interface WrittenSnapshot {
  readonly lsn: number;
  readonly rows: number;
  readonly bytes: number;
}

/** How a thread of its own reaches the NATS server this store is on (plain data: it crosses to a worker). */
export interface SnapshotDial {
  readonly servers: string | string[];
  readonly name: string;
  readonly credsPath: string | undefined;
  readonly caPath: string | undefined;
}

/** Where a snapshot's data object goes when the snapshot thread writes it itself. */
export interface UploadTarget {
  readonly dial: SnapshotDial;
  readonly bucket: string;
  readonly name: string;
  readonly chunkBytes: number;
}

/** How a store sweeps the leftovers of unfinished writes. */
export interface SweepOptions {
  /** What a sweep removed, or why it failed. */
  readonly log?: (line: string) => void;
  /** The grace, instead of PX_SNAPSHOT_SWEEP_GRACE_S's (tests: below its floor). */
  readonly graceMs?: number;
}

/** The object store snapshots live in (made with its byte limit if missing); feed checkpoints share it. */
export function openSnapshotBucket(nc: NatsConnection, replicas = 1): Promise<ObjectStore> {
  return new Objm(nc).create(OBJ_SNAPSHOTS, { replicas, max_bytes: storeLimits().snapshotMaxBytes });
}

export class SnapshotStore {
  /** Manifest names whose data verified, with the LSN they cover. */
  private readonly verified = new Map<string, number>();
  /** When this store last swept (0: not yet: its first snapshot sweeps). */
  private sweptAt = 0;
  /** The sweep under way or last done: a snapshot never waits for it (tests do). */
  sweeping: Promise<void> = Promise.resolve();

  constructor(
    private readonly os: ObjectStore,
    private readonly keep = 3,
    /** Bytes per chunk message of a data object (at most the server's max_payload). */
    private readonly chunkBytes = 128 * 1024,
    /** When given, data objects are written and read by objects.ts (pipelined publishes, a pull consumer) rather than the client's put/get. */
    private readonly direct?: { readonly js: JetStreamClient; readonly bucket: string; readonly dial?: SnapshotDial },
    private readonly sweepOptions: SweepOptions = {},
  ) {}

  /**
   * `wrap` lets a test put a fault in front of the object store (a crash
   * between data and manifest); it keeps every write on this connection.
   * `dial`: the snapshot thread may connect with it and write data objects
   * itself.
   */
  static async open(nc: NatsConnection, replicas = 1, wrap?: (os: ObjectStore) => ObjectStore, dial?: SnapshotDial, sweep?: SweepOptions): Promise<SnapshotStore> {
    // Node's own SHA-256 for the object store's digests (the default is pure JavaScript, several times slower).
    setSha256Backend("native");
    // Its own byte limit (discard new): snapshots cannot fill the WAL's or the control plane's space.
    const chunkBytes = Math.min(DATA_CHUNK_BYTES, nc.info?.max_payload ?? 1024 * 1024);
    const os = await openSnapshotBucket(nc, replicas);
    return new SnapshotStore(wrap === undefined ? os : wrap(os), 3, chunkBytes, { js: jetstream(nc), bucket: OBJ_SNAPSHOTS, ...(wrap === undefined && dial !== undefined ? { dial } : {}) }, sweep);
  }

  /** Where the snapshot thread writes the data object of a snapshot with this head itself; undefined: it hands the data to writeStream. */
  uploadTarget(shard: ShardAddress, head: SnapshotHead): UploadTarget | undefined {
    const dial = this.direct?.dial;
    if (dial === undefined) return undefined;
    return { dial, bucket: this.direct!.bucket, name: `${prefix(shard)}${lsnKey(head.appliedLsn)}.data`, chunkBytes: this.chunkBytes };
  }

  /**
   * Finishes a snapshot whose data object the snapshot thread stored at
   * uploadTarget's name: its manifest, then pruning. `stored` is what the
   * thread's writer sent, `summary` what it encoded.
   */
  async writeUploaded(shard: ShardAddress, head: SnapshotHead, stored: Promise<{ readonly bytes: number; readonly sha256: string }>, summary: Promise<SnapshotSummary & { readonly sha256: string }>): Promise<WrittenSnapshot> {
    const base = `${prefix(shard)}${lsnKey(head.appliedLsn)}`;
    const [put, s] = await Promise.all([stored, summary]);
    if (s.sha256 !== put.sha256) throw new Error(`snapshot ${base}: the encoder's SHA-256 ${s.sha256} is not that of the ${put.bytes} bytes stored (${put.sha256})`);
    return this.finish(shard, head, base, put.bytes, s);
  }

  /** Manifests of one shard, newest first. */
  async manifests(shard: ShardAddress): Promise<string[]> {
    const p = prefix(shard);
    return (await this.os.list())
      .filter((i) => !i.deleted && i.name.startsWith(p) && i.name.endsWith(".manifest"))
      .map((i) => i.name)
      .sort()
      .reverse();
  }

  async write(shard: ShardAddress, table: HotTable): Promise<WrittenSnapshot> {
    const cols = table.exportColumns();
    const enc = encodeSnapshot(table.spec, cols);
    const base = `${prefix(shard)}${lsnKey(cols.appliedLsn)}`;
    await this.os.putBlob({ name: `${base}.data`, options: { max_chunk_size: this.chunkBytes } }, enc.data);
    const manifest = encodeSnapshotManifest({
      tenant: shard.tenant,
      table: shard.table,
      bucket: shard.bucket,
      lsn: BigInt(cols.appliedLsn),
      schemaVersion: table.spec.version,
      symbols: cols.symbols,
      rows: BigInt(enc.rows),
      persistedLsn: BigInt(cols.persistedLsn),
      horizonMicros: BigInt(cols.horizonMicros),
      dataObject: `${base}.data`,
      dataBytes: BigInt(enc.data.length),
      dataSha256: enc.sha256,
      dataFormat: enc.format,
      chunkRows: enc.chunkRows.map(BigInt),
      seamRows: BigInt(enc.seamRows),
      createdAtMicros: BigInt(Date.now() * 1000),
    });
    // The manifest goes last: until it exists, the data object is invisible to loaders.
    await this.os.putBlob({ name: `${base}.manifest` }, manifest);
    this.wrote(`${base}.manifest`, cols.appliedLsn);
    await this.prune(shard);
    return { lsn: cols.appliedLsn, rows: enc.rows, bytes: enc.data.length };
  }

  /**
   * Writes a snapshot whose data arrives as framed chunks (the worker's), streamed
   * into the object store as they come; the manifest, written last, carries the
   * SHA-256 and figures `summary` resolves with once the last chunk is encoded.
   */
  async writeStream(shard: ShardAddress, head: SnapshotHead, parts: AsyncIterable<Uint8Array>, summary: Promise<SnapshotSummary & { readonly sha256: string }>): Promise<WrittenSnapshot> {
    const base = `${prefix(shard)}${lsnKey(head.appliedLsn)}`;
    let bytes = 0;
    const chunkBytes = this.chunkBytes;
    if (this.direct !== undefined) {
      const put = await putObject(this.direct.js, this.os, this.direct.bucket, `${base}.data`, parts, chunkBytes);
      bytes = put.bytes;
      const s = await summary;
      // The worker hashed what it encoded, this side what it sent: one byte lost or changed between them fails the snapshot.
      if (s.sha256 !== put.sha256) throw new Error(`snapshot ${base}: the worker's SHA-256 ${s.sha256} is not that of the ${bytes} bytes stored (${put.sha256})`);
      return this.finish(shard, head, base, bytes, s);
    }
    // In pieces of the object store's chunk size: its buffer copies what it holds on every chunk it drains.
    const counted = (async function* () {
      for await (const p of parts) {
        bytes += p.length;
        for (let at = 0; at < p.length; at += chunkBytes) yield p.subarray(at, Math.min(p.length, at + chunkBytes));
      }
    })();
    await this.os.put({ name: `${base}.data`, options: { max_chunk_size: chunkBytes } }, ReadableStream.from(counted));
    return this.finish(shard, head, base, bytes, await summary);
  }

  /** Writes the manifest of a stored data object (last: until it exists, loaders do not see the data), then prunes. */
  private async finish(shard: ShardAddress, head: SnapshotHead, base: string, bytes: number, s: SnapshotSummary & { readonly sha256: string }): Promise<WrittenSnapshot> {
    const manifest = encodeSnapshotManifest({
      tenant: shard.tenant,
      table: shard.table,
      bucket: shard.bucket,
      lsn: BigInt(head.appliedLsn),
      schemaVersion: head.schemaVersion,
      symbols: head.symbols,
      rows: BigInt(s.rows),
      persistedLsn: BigInt(head.persistedLsn),
      horizonMicros: BigInt(head.horizonMicros),
      dataObject: `${base}.data`,
      dataBytes: BigInt(bytes),
      dataSha256: s.sha256,
      dataFormat: SNAPSHOT_DATA_FORMAT,
      chunkRows: s.chunkRows.map(BigInt),
      seamRows: BigInt(s.seamRows),
      createdAtMicros: BigInt(Date.now() * 1000),
    });
    await this.os.putBlob({ name: `${base}.manifest` }, manifest);
    this.wrote(`${base}.manifest`, head.appliedLsn);
    await this.prune(shard);
    return { lsn: head.appliedLsn, rows: s.rows, bytes };
  }

  /**
   * A snapshot this store wrote counts as verified: its SHA-256 was taken over
   * the very bytes streamed into the object store (whose own digest guards the
   * copy). Reading it all back to hash it again (400 MB for 10 M ticks) only
   * for compaction to trust it doubled each snapshot's cost.
   */
  private wrote(manifest: string, lsn: number): void {
    this.verified.set(manifest, lsn);
  }

  private async prune(shard: ShardAddress): Promise<void> {
    const old = (await this.manifests(shard)).slice(this.keep);
    for (const m of old) {
      await this.os.delete(m).catch(() => {});
      await this.os.delete(m.replace(/\.manifest$/, ".data")).catch(() => {});
    }
    if (Date.now() - this.sweptAt >= SWEEP_EVERY_MS) {
      this.sweptAt = Date.now();
      const log = this.sweepOptions.log ?? (() => {});
      // In the background: a slow listing must not hold the snapshot that started it.
      this.sweeping = this.sweepLeftovers().then(
        (r) => {
          if (r.chunkSubjects.length + r.dataObjects.length > 0) log(`snapshot store: removed leftovers of unfinished snapshot writes: the chunks of ${r.chunkSubjects.length} cut-off writes, ${r.dataObjects.length} data objects without a manifest${r.dataObjects.length > 0 ? ` (${r.dataObjects.join(", ")})` : ""}`);
        },
        (e: unknown) => log(`snapshot store: sweeping leftovers of unfinished snapshot writes failed (${(e as Error).message}); tried again after the next snapshot ${SWEEP_EVERY_MS / 60_000} min from now`),
      );
    }
  }

  /** Removes the bucket's leftovers of writes that never finished, untouched for the grace (./sweep.ts). */
  async sweepLeftovers(): Promise<SweepResult> {
    if (this.direct === undefined) return { chunkSubjects: [], dataObjects: [] };
    const graceMs = this.sweepOptions.graceMs ?? sweepGraceMs();
    return sweepSnapshotLeftovers(await this.direct.js.jetstreamManager(false), this.os, this.direct.bucket, graceMs);
  }

  /**
   * LSN of the newest snapshot whose data matches its manifest's SHA-256 (0:
   * none): what WAL compaction may purge up to. Each snapshot is hashed once.
   */
  async newestVerifiedLsn(shard: ShardAddress): Promise<number> {
    for (const name of await this.manifests(shard)) {
      const known = this.verified.get(name);
      if (known !== undefined) return known;
      try {
        const mbytes = (await this.readData(name))?.data;
        if (!mbytes) continue;
        const manifest = decodeSnapshotManifest(mbytes);
        const data = await this.readData(manifest.dataObject);
        if (!data || data.sha256 !== manifest.dataSha256) continue;
        const lsn = Number(manifest.lsn);
        this.verified.set(name, lsn);
        return lsn;
      } catch {
        // Unreadable: an older one may still verify.
      }
    }
    return 0;
  }

  /**
   * An object's bytes (a data object's, a manifest's) and their SHA-256 (hex);
   * null when it does not exist. Not the client's get: it waits forever for a
   * chunk gone from the stream; objects.ts fails on it.
   */
  private async readData(name: string): Promise<{ data: Uint8Array; sha256: string } | null> {
    if (this.direct !== undefined) return getObject(this.direct.js, this.os, this.direct.bucket, name);
    const data = await this.os.getBlob(name);
    return data === null ? null : { data, sha256: sha256Hex(data) };
  }

  /** A snapshot's table from its manifest: format 3 decoded frame by frame as it arrives (the CPU works while the server sends), others read whole. */
  private async loadData(spec: TableSpec, manifest: SnapshotManifest): Promise<HotTableColumns> {
    const reader = this.direct === undefined ? undefined : snapshotDataReader(spec, manifest);
    if (this.direct !== undefined && reader !== undefined) {
      const received = await readObject(this.direct.js, this.os, this.direct.bucket, manifest.dataObject, (piece) => reader.push(piece), Number(manifest.dataBytes));
      if (received === null) throw new Error(`data object ${manifest.dataObject} is missing`);
      // Damage shows first as a checksum mismatch; only data that checks out is assembled from the frames.
      return decodeStreamed(spec, manifest, received, reader);
    }
    const data = await this.readData(manifest.dataObject);
    if (!data) throw new Error(`data object ${manifest.dataObject} is missing`);
    return decodeSnapshot(spec, manifest, data.data, data.sha256);
  }

  /** The newest snapshot that verifies; undefined when there is none (replay from LSN 1). */
  async loadLatest(shard: ShardAddress, spec: TableSpec, log: (line: string) => void): Promise<LoadedSnapshot | undefined> {
    for (const name of await this.manifests(shard)) {
      try {
        const mbytes = (await this.readData(name))?.data;
        if (!mbytes) throw new Error("manifest vanished");
        const manifest = decodeSnapshotManifest(mbytes);
        // The decoded columns were made for this table alone: adopted as its storage, not copied into fresh memory again.
        const table = HotTable.fromColumns(spec, await this.loadData(spec, manifest), {}, true);
        return { table, manifest };
      } catch (e) {
        log(`snapshot ${name} is unusable (${(e as Error).message}); trying an older one`);
      }
    }
    return undefined;
  }
}
