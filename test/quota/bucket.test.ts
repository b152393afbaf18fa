// Token bucket on a simulated clock (plain numbers): refill, burst, borrowing
// past the burst, and the wait it names.
import { describe, expect, it } from "vitest";
import { fullBucket, refill, take } from "../../src/quota/index.js";

const rate = { perSecond: 100, capacity: 100 };

describe("quota - token bucket", () => {
  it("bucket - starts full, takes what it holds, then refuses with the time until the cost fits", () => {
    let b = fullBucket(rate, 0);
    const a = take(b, rate, 60, 0);
    expect(a.ok).toBe(true);
    b = a.bucket;
    const r = take(b, rate, 60, 0);
    expect(r).toMatchObject({ ok: false, waitMs: 200 });
    // 200 ms later 20 more tokens: 60 fit.
    expect(take(r.bucket, rate, 60, 200).ok).toBe(true);
  });

  it("bucket - refill stops at the capacity and ignores a clock that went back", () => {
    const b = { tokens: 0, atMs: 1_000 };
    expect(refill(b, rate, 60_000).tokens).toBe(100);
    expect(refill(b, rate, 500)).toBe(b);
  });

  it("bucket - a cost over the burst passes on a full bucket and leaves it in debt", () => {
    const r = take(fullBucket(rate, 0), rate, 250, 0);
    expect(r).toMatchObject({ ok: true, bucket: { tokens: -150 } });
    // It pays the debt back before anything else passes: 1.5 s to zero, then 1 s to a full bucket.
    expect(take(r.bucket, rate, 1, 1_000).ok).toBe(false);
    expect(take(r.bucket, rate, 1, 1_510).ok).toBe(true);
  });

  it("bucket - over many simulated seconds, admitted cost tracks the rate", () => {
    let b = fullBucket(rate, 0);
    let admitted = 0;
    for (let t = 0; t <= 10_000; t += 5) {
      const r = take(b, rate, 10, t);
      b = r.bucket;
      if (r.ok) admitted += 10;
    }
    // 100/s for 10 s plus the initial burst of 100.
    expect(admitted).toBeGreaterThanOrEqual(1_000);
    expect(admitted).toBeLessThanOrEqual(1_110);
  });
});
