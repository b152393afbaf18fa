// JetStream fsync setting (src/runtime/servers/natssync.ts): a line only when
// asked for, only for a server that knows it (2.10+), a named refusal otherwise.
import { describe, expect, it } from "vitest";
import { findNatsServerBinary } from "../../src/runtime/servers/nats.js";
import { natsServerVersion, parseNatsVersion, syncIntervalLine } from "../../src/runtime/servers/natssync.js";

describe("nats sync_interval", () => {
  it("sync - nothing asked, nothing written; always or a duration on 2.10+; refused by name on 2.9 and for a malformed value", () => {
    expect(parseNatsVersion("nats-server: v2.9.10\n")).toEqual([2, 9, 10]);
    expect(syncIntervalLine(undefined, [2, 9, 10])).toBeUndefined();
    expect(syncIntervalLine("always", [2, 10, 0])).toBe("  sync_interval: always");
    expect(syncIntervalLine("1s", [2, 11, 3])).toBe("  sync_interval: 1s");
    expect(() => syncIntervalLine("always", [2, 9, 10])).toThrow(/PX_NATS_SYNC=always needs nats-server 2.10 or later \(sync_interval\), found 2.9.10/);
    expect(() => syncIntervalLine("sometimes", [2, 10, 0])).toThrow(/PX_NATS_SYNC=sometimes: use "always" .* or a duration/);
  });

  it("sync - the installed nats-server's version is read", () => {
    const v = natsServerVersion(findNatsServerBinary());
    expect(v?.[0]).toBe(2);
  });
});
