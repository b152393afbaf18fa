// ControlKv over a real JetStream KV bucket (nats.js v3). Buckets are opened or
// created with the caller's replica count; raw client errors are classified
// here once (a failed expectation becomes KvConflictError).
import type { NatsConnection, QueuedIterator } from "@nats-io/transport-node";
import { headers } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import type { KV, KvOptions } from "@nats-io/kv";
import { KvConflictError, KvWatchError, isConflict } from "./kv.js";
import type { ControlKv, KvChange, KvRecord } from "./kv.js";
import { storeLimits } from "../config/limits.js";

export interface BucketOptions {
  readonly replicas?: number;
  /** Values kept per key; 1 is enough for current-state buckets. */
  readonly history?: number;
  /** Publish timeout for writes (a lease renewal should fail fast, not after the client default of 5 s). */
  readonly timeoutMs?: number;
  /**
   * How often a watcher checks the bucket's last revision against what it
   * delivered and fills any gap from the stream. A KV watcher whose consumer
   * lived on a server that died only notices after two missed idle heartbeats
   * (10 s or more); the control plane cannot be blind that long.
   */
  readonly resyncMs?: number;
}

/** Opens `bucket`, creating it with `o` when it does not exist yet. */
export async function openKv(nc: NatsConnection, bucket: string, o: BucketOptions = {}): Promise<KV> {
  const kvm = new Kvm(nc);
  // Its own byte limit: a full WAL cannot take the control plane's space (src/config/limits.ts).
  const config: Partial<KvOptions> = { replicas: o.replicas ?? 1, history: o.history ?? 1, max_bytes: storeLimits().controlBucketMaxBytes };
  try {
    return await kvm.create(bucket, config);
  } catch (e) {
    // Created earlier with other settings (e.g. by an older node): use it as it is.
    if (/already in use|exists/i.test((e as Error).message)) return kvm.open(bucket);
    throw e;
  }
}

/**
 * How many initial values a watcher delivers: the num_pending its consumer had at
 * creation (the iterator keeps that consumer as `_data`; `info(true)` is its cached
 * info, no request). Falls back to the stream's message count if the client changes.
 */
async function initialValues(it: QueuedIterator<unknown>, manager: () => Promise<JetStreamManager>, stream: string): Promise<number> {
  const consumer = (it as { _data?: { info?: (cached: boolean) => Promise<{ num_pending: number }> } })._data;
  if (typeof consumer?.info === "function") return (await consumer.info(true)).num_pending;
  return (await (await manager()).streams.info(stream)).state.messages;
}

function classify(e: unknown, what: string): unknown {
  if (isConflict(e)) return new KvConflictError(`${what}: ${(e as Error).message}`, { cause: e });
  return e;
}

export function natsControlKv(nc: NatsConnection, kv: KV, bucket: string, o: BucketOptions = {}): ControlKv {
  const js: JetStreamClient = jetstream(nc);
  let jsm: JetStreamManager | undefined;
  const manager = async (): Promise<JetStreamManager> => (jsm ??= await jetstreamManager(nc));
  const timeout = o.timeoutMs;
  const stream = `KV_${bucket}`;

  const prefix = `$KV.${bucket}.`;
  // Current values read from the stream leader one message at a time (next_by_subj): no consumer
  // is created, so this works while the JetStream meta leader is being re-elected. With history 1
  // the stream holds one message per key, so this is one request per key.
  const list = async (): Promise<KvRecord[]> => {
    const m = await manager();
    const latest = new Map<string, KvRecord | undefined>();
    for (let seq = 1; ; ) {
      const sm = await m.streams.getMessage(stream, { seq, next_by_subj: `${prefix}>` } as unknown as { seq: number });
      if (!sm) break;
      const key = sm.subject.slice(prefix.length);
      const op = sm.header?.get("KV-Operation") ?? "";
      latest.set(key, op === "DEL" || op === "PURGE" ? undefined : { key, value: sm.data, revision: sm.seq, createdMs: sm.time.getTime() });
      seq = sm.seq + 1;
    }
    return [...latest.values()].filter((r): r is KvRecord => r !== undefined);
  };
  const lastRevision = async (): Promise<number> => (await (await manager()).streams.info(stream)).state.last_seq;

  const get = async (key: string): Promise<KvRecord | undefined> => {
    const e = await kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    return { key, value: e.value, revision: e.revision, createdMs: e.created.getTime() };
  };

  return {
    bucket,
    get,
    list,
    create: async (key, value) => {
      try {
        return await kv.create(key, value);
      } catch (e) {
        throw classify(e, `${bucket}: create ${key}`);
      }
    },
    update: async (key, value, revision) => {
      try {
        return await kv.update(key, value, revision, timeout);
      } catch (e) {
        throw classify(e, `${bucket}: update ${key} at revision ${revision}`);
      }
    },
    put: (key, value) => kv.put(key, value, timeout === undefined ? {} : { timeout }),
    delete: async (key, revision) => {
      try {
        await kv.delete(key, revision === undefined ? {} : { previousSeq: revision });
      } catch (e) {
        throw classify(e, `${bucket}: delete ${key} at revision ${revision}`);
      }
    },
    writeIfBucketAt: async (key, value, lastRevision) => {
      const h = headers();
      if (value === undefined) h.set("KV-Operation", "DEL");
      try {
        const ack = await js.publish(`$KV.${bucket}.${key}`, value ?? new Uint8Array(), {
          headers: h,
          expect: { lastSequence: lastRevision },
          ...(timeout === undefined ? {} : { timeout }),
        });
        return ack.seq;
      } catch (e) {
        throw classify(e, `${bucket}: write ${key} expecting last revision ${lastRevision}`);
      }
    },
    lastRevision,
    watch: async (onChange, onSynced, onError, wo) => {
      // Changes arrive from the KV watcher and from the periodic resync; each key only moves forward.
      const seen = new Map<string, { revision: number; present: boolean }>();
      let maxSeen = 0;
      let stopped = false;
      const deliver = (c: KvChange): void => {
        if (stopped) return;
        const prev = seen.get(c.key);
        if (prev && prev.revision >= c.revision) return;
        seen.set(c.key, { revision: c.revision, present: c.value !== undefined });
        maxSeen = Math.max(maxSeen, c.revision);
        onChange(c);
      };
      let synced = false;
      const markSynced = (): void => {
        if (synced || stopped) return;
        synced = true;
        onSynced?.();
      };
      const it = await kv.watch();
      // The watcher marks the end of the initial values itself (@nats-io/kv 3.x, kv.js watch()):
      // it counts deliveries against its consumer's num_pending at creation, and the last initial
      // value and every later change carry isUpdate = true. With no initial values nothing is
      // delivered, so that count is read from the same consumer info the watcher used.
      if ((await initialValues(it, manager, stream)) === 0) markSynced();
      const fail = (e: KvWatchError): void => {
        if (stopped) return;
        stopped = true;
        clearInterval(timer);
        it.stop();
        onError?.(e);
      };
      void (async () => {
        try {
          for await (const e of it) {
            deliver({ key: e.key, value: e.operation === "PUT" ? e.value : undefined, revision: e.revision, createdMs: e.created.getTime() });
            if (e.isUpdate) markSynced();
          }
          fail(new KvWatchError(`${bucket}: the KV watcher ended by itself (its consumer is gone); re-open the watch`));
        } catch (err) {
          fail(new KvWatchError(`${bucket}: the KV watcher failed: ${(err as Error).message}; re-open the watch`, { cause: err }));
        }
      })();
      let resyncing = false;
      let behindAt = 0;
      const resync = async (): Promise<void> => {
        const last = await lastRevision();
        // Everything up to the bucket's last revision was delivered: synced (a fallback: the
        // watcher's own isUpdate marker normally says so first).
        if (last <= maxSeen) {
          behindAt = 0;
          return markSynced();
        }
        // Caught up with what existed a period ago (so with the initial values too): synced.
        if (behindAt !== 0 && maxSeen >= behindAt) markSynced();
        // Behind: give the watcher one period to deliver what exists now before reading it ourselves.
        if (behindAt === 0 || maxSeen >= behindAt) {
          behindAt = last;
          return;
        }
        behindAt = 0;
        // Still behind a period later: the watcher is stalled (a deleted or lost consumer only shows as
        // missing heartbeats, the iterator does not end). A caller that can re-open the watch gets an error
        // and resyncs from a fresh watcher (unless it asked for fillStalls); the others get the gap filled from the stream.
        if (onError && wo?.fillStalls !== true) return fail(new KvWatchError(`${bucket}: the KV watcher stalled (bucket at revision ${last}, delivered up to ${maxSeen}); re-open the watch`));
        const records = await list();
        const present = new Set(records.map((r) => r.key));
        for (const r of records) deliver(r);
        // Deleted while we were blind: the delete happened at or before `last`.
        for (const [key, s] of seen) if (s.present && !present.has(key) && s.revision <= last) deliver({ key, value: undefined, revision: last, createdMs: Date.now() });
        markSynced();
      };
      const timer = setInterval(() => {
        if (resyncing) return;
        resyncing = true;
        resync()
          .catch(() => {}) // NATS unavailable: the next tick tries again
          .finally(() => (resyncing = false));
      }, o.resyncMs ?? 1_000);
      return () => {
        stopped = true;
        clearInterval(timer);
        it.stop();
      };
    },
  };
}
