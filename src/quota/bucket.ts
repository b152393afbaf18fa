// Token bucket over an injected clock (pure): the state is a value, `take`
// returns the next state and, when refused, how long until the cost would fit.
// The gateway keeps one per tenant and quota; tests drive it with a simulated clock.

export interface Bucket {
  /** Tokens held at `atMs` (negative: a batch larger than the burst borrowed ahead). */
  readonly tokens: number;
  readonly atMs: number;
}

export interface BucketRate {
  /** Tokens added per second. */
  readonly perSecond: number;
  /** Most tokens the bucket holds (the burst). */
  readonly capacity: number;
}

export type Take = { readonly ok: true; readonly bucket: Bucket } | { readonly ok: false; readonly bucket: Bucket; readonly waitMs: number };

/** A full bucket at `nowMs`: a tenant starts with its whole burst. */
export const fullBucket = (rate: BucketRate, nowMs: number): Bucket => ({ tokens: rate.capacity, atMs: nowMs });

/** The bucket refilled up to `nowMs` (a clock that went back adds nothing). */
export function refill(b: Bucket, rate: BucketRate, nowMs: number): Bucket {
  if (nowMs <= b.atMs) return b;
  return { tokens: Math.min(rate.capacity, b.tokens + ((nowMs - b.atMs) / 1000) * rate.perSecond), atMs: nowMs };
}

/**
 * Takes `cost` tokens at `nowMs`. A cost above the capacity passes once the
 * bucket is full and leaves it negative (it waits for its own refill), so a
 * batch larger than the burst is slowed, never refused for good.
 */
export function take(b: Bucket, rate: BucketRate, cost: number, nowMs: number): Take {
  const now = refill(b, rate, nowMs);
  const need = Math.min(cost, rate.capacity);
  if (now.tokens >= need) return { ok: true, bucket: { tokens: now.tokens - cost, atMs: now.atMs } };
  return { ok: false, bucket: now, waitMs: Math.ceil(((need - now.tokens) / rate.perSecond) * 1000) };
}

