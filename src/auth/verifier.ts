// TokenVerifier: turns a presented token into a Principal. Records are cached
// in memory for a few seconds; a KV watch evicts a record the moment it
// changes, and the cache age bounds staleness if the watch lags or breaks, so
// a revocation takes effect within `cacheTtlMs` at worst.
import type { NatsConnection } from "@nats-io/transport-node";
import { KvWatchInclude } from "@nats-io/kv";
import type { KV } from "@nats-io/kv";
import { TokenStoreUnavailableError } from "./errors.js";
import { openTokenBucket } from "./store.js";
import { TOKEN_KEYS, checkSecret, decodeRecord, idOfKey, parsePresented, tokenKey } from "./token.js";
import type { Principal, TokenRecord } from "./token.js";

/** Where records come from: px_tokens in production, a map in unit tests. */
export interface TokenSource {
  get(id: string): Promise<TokenRecord | undefined>;
  /** Calls `onChange(id)` for every later write or delete; resolves to a stop function. */
  watch(onChange: (id: string) => void): Promise<() => void>;
}

export function kvTokenSource(kv: KV): TokenSource {
  return {
    get: async (id) => {
      const e = await kv.get(tokenKey(id));
      return e && e.operation === "PUT" ? decodeRecord(e.json()) : undefined;
    },
    watch: async (onChange) => {
      const it = await kv.watch({ key: TOKEN_KEYS, include: KvWatchInclude.UpdatesOnly });
      void (async () => {
        for await (const e of it) {
          const id = idOfKey(e.key);
          if (id) onChange(id);
        }
      })().catch(() => {
        // The watch ended (connection closed): the cache TTL still bounds staleness.
      });
      return () => it.stop();
    },
  };
}

export interface VerifierOptions {
  /** Longest a cached record is trusted without re-reading it. */
  readonly cacheTtlMs?: number;
  /** Unknown ids are remembered this long, so garbage tokens do not each cost a KV read. */
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  readonly loadedAt: number;
  readonly record: Promise<TokenRecord | undefined>;
}

export class TokenVerifier {
  private readonly cache = new Map<string, Entry>();
  private stopWatch: (() => void) | undefined;
  private readonly ttl: number;
  private readonly negativeTtl: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(
    private readonly source: TokenSource,
    o: VerifierOptions = {},
  ) {
    this.ttl = o.cacheTtlMs ?? 5_000;
    this.negativeTtl = o.negativeTtlMs ?? 1_000;
    this.maxEntries = o.maxEntries ?? 10_000;
    this.now = o.now ?? Date.now;
  }

  static async open(nc: NatsConnection, o: VerifierOptions & { replicas?: number } = {}): Promise<TokenVerifier> {
    const v = new TokenVerifier(kvTokenSource(await openTokenBucket(nc, o.replicas)), o);
    await v.start();
    return v;
  }

  /** Starts the watch that evicts changed records. */
  async start(): Promise<void> {
    this.stopWatch = await this.source.watch((id) => this.cache.delete(id));
  }

  close(): void {
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.cache.clear();
  }

  /**
   * Throws AuthError(UNAUTHENTICATED) for a missing, malformed, unknown, revoked
   * or expired token, TokenStoreUnavailableError when px_tokens cannot be read.
   */
  async verify(token: string | undefined): Promise<Principal> {
    const { id, secret } = parsePresented(token);
    let record: TokenRecord | undefined;
    try {
      record = await this.load(id);
    } catch (e) {
      throw new TokenStoreUnavailableError(`tokens cannot be checked right now (${(e as Error).message}); retry shortly`, { cause: e });
    }
    return checkSecret(record, secret, this.now());
  }

  private async load(id: string): Promise<TokenRecord | undefined> {
    const now = this.now();
    const hit = this.cache.get(id);
    if (hit && now - hit.loadedAt < this.ttl) {
      const record = await hit.record;
      if (record || now - hit.loadedAt < this.negativeTtl) return record;
    }
    if (this.cache.size >= this.maxEntries) {
      // Oldest first (Map keeps insertion order); re-reading them later is cheap.
      for (const key of this.cache.keys()) {
        this.cache.delete(key);
        if (this.cache.size < this.maxEntries / 2) break;
      }
    }
    const entry: Entry = { loadedAt: now, record: this.source.get(id) };
    this.cache.set(id, entry);
    entry.record.catch(() => {
      // A failed read must not be cached (a newer entry may already have replaced it).
      if (this.cache.get(id) === entry) this.cache.delete(id);
    });
    return entry.record;
  }
}
