import { describe, expect, it } from "vitest";
import { retryOnTimeout } from "../../src/node/startup.js";

class TimeoutError extends Error {
  override readonly name = "TimeoutError";
}

describe("node start-up", () => {
  it("start-up - a JetStream step that times out is retried (logged) until it answers", async () => {
    let calls = 0;
    const lines: string[] = [];
    const v = await retryOnTimeout("opening px_config", () => (++calls < 3 ? Promise.reject(new TimeoutError("timeout")) : Promise.resolve(42)), (l) => lines.push(l));
    expect(v).toBe(42);
    expect(calls).toBe(3);
    expect(lines).toEqual(["opening px_config timed out; retrying", "opening px_config timed out; retrying"]);
  });

  it("start-up - JetStream's 'no suitable peers for placement' (a cluster whose meta leader has not heard from every peer) is retried like a timeout", async () => {
    let calls = 0;
    const v = await retryOnTimeout("opening px_config", () => (++calls < 2 ? Promise.reject(new Error("no suitable peers for placement")) : Promise.resolve(7)), () => {});
    expect([v, calls]).toEqual([7, 2]);
  });

  it("start-up - any other error fails at once, as thrown; timeouts give up after the attempts", async () => {
    let calls = 0;
    const denied = new Error("permissions violation for subscription");
    await expect(retryOnTimeout("opening px_config", () => (calls++, Promise.reject(denied)), () => {})).rejects.toBe(denied);
    expect(calls).toBe(1);
    let tries = 0;
    await expect(retryOnTimeout("x", () => (tries++, Promise.reject(new TimeoutError("timeout"))), () => {}, 2)).rejects.toMatchObject({ name: "TimeoutError" });
    expect(tries).toBe(2);
  });
});
