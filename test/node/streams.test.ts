// Stream setup of a node: each tenant's WAL and watermark streams are created
// once; a JetStream still electing leaders is retried on the Schedule, and a
// tenant that keeps failing ends in a TenantStreamsError.
import type { JetStreamManager } from "@nats-io/jetstream";
import { describe, expect, it } from "vitest";
import { catalogOf } from "../../src/catalog.js";
import { TenantStreamsError, tenantStreams } from "../../src/node/streams.js";
import { tenant } from "../control/fakes.js";

/** A JetStreamManager with no streams whose first `failures` adds time out. */
function fakeJsm(failures: number) {
  const created: string[] = [];
  const configs = new Map<string, { name: string }>();
  let left = failures;
  const jsm = {
    streams: {
      info: async (name: string) => {
        if (!created.includes(name)) throw new Error("stream not found");
        return { config: configs.get(name), state: { bytes: 0 } };
      },
      add: async (config: { name: string }) => {
        if (left-- > 0) throw new Error("timeout: JetStream has no leader yet");
        created.push(config.name);
        configs.set(config.name, config);
        return {};
      },
      // The WAL's anchor record is there already.
      getMessage: async () => ({ seq: 1 }),
    },
  } as unknown as JetStreamManager;
  return { jsm, created };
}

const catalog = catalogOf([tenant("acme", { trades: 1 }), tenant("beta", { quotes: 1 })]);

describe("node streams", () => {
  it("streams - created once per tenant, retried while JetStream times out", async () => {
    const { jsm, created } = fakeJsm(2);
    const lines: string[] = [];
    const prepare = tenantStreams(jsm, { replicas: 1, nodeId: "n1", log: (l) => lines.push(l), baseDelayMs: 1 });
    await prepare(catalog);
    await prepare(catalog);
    expect(created).toHaveLength(4);
    expect(lines.filter((l) => /tenant acme failed \(timeout.*retrying/.test(l))).toHaveLength(2);
  });

  it("streams - a tenant that keeps failing ends in TenantStreamsError naming it", async () => {
    const { jsm } = fakeJsm(100);
    const prepare = tenantStreams(jsm, { replicas: 1, nodeId: "n1", log: () => {}, attempts: 3, baseDelayMs: 1 });
    const e = await prepare(catalog).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(TenantStreamsError);
    expect((e as Error).message).toMatch(/node n1: cannot create the streams of tenant acme: timeout/);
  });
});
