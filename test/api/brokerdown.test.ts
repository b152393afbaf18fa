import { describe, expect, it } from "vitest";
import { NoRespondersError, RequestError, TimeoutError } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";
import { classify } from "../../src/api/errors.js";

describe("api - a broker that did not answer is UNAVAILABLE, not INTERNAL", () => {
  const logged: string[] = [];
  const log = (l: string): void => void logged.push(l);

  it("NATS timeouts, no responders and JetStream 503 become UNAVAILABLE naming the retry", () => {
    for (const e of [new TimeoutError(), new NoRespondersError("$JS.API.CONSUMER.CREATE.WAL_t"), new RequestError("x", { cause: new TimeoutError() }), Object.assign(new Error("jetstream is not enabled"), { cause: new NoRespondersError("$JS.API.INFO") }), new JetStreamApiError({ code: 503, err_code: 10008, description: "JetStream system temporarily unavailable" })]) {
      const a = classify(e, log);
      expect(a.code).toBe("UNAVAILABLE");
      expect(a.message).toMatch(/message broker \(NATS\) did not answer: .*retry the call/);
    }
    expect(logged).toEqual([]);
  });

  it("other JetStream errors and unknown errors stay INTERNAL, logged with a reference", () => {
    expect(classify(new JetStreamApiError({ code: 404, err_code: 10014, description: "consumer not found" }), log).code).toBe("INTERNAL");
    expect(classify(new Error("boom"), log).code).toBe("INTERNAL");
    expect(classify(new RequestError("denied", { cause: new Error("permission") }), log).code).toBe("INTERNAL");
    expect(logged).toHaveLength(3);
  });
});
