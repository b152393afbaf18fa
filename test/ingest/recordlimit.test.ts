// The WAL record size rule (src/ingest/recordlimit.ts) and how the gateway
// machine answers a batch the wal actor refused for it: a named, non-retryable
// RESOURCE_EXHAUSTED, and the gateway stays ready for everyone else.
import { describe, expect, it } from "vitest";
import { createActor, fromCallback } from "xstate";
import { gatewayMachine } from "../../actors/gateway.js";
import type { GatewayEvent, SourceCommand, WalCommand } from "../../actors/gateway.js";
import { catalogOfCluster } from "../../src/catalog.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { WAL_HEADER_ROOM, maxRecordBytes, oversizeRecord } from "../../src/ingest/recordlimit.js";
import type { WalAppendPlan } from "../../src/ingest/plan.js";

const plan = (bucket: number, bytes: number, rows: number): WalAppendPlan => ({ bucket, subject: `px.t.wal.x.${bucket}`, msgId: undefined, rows, record: new Uint8Array(bytes) });

describe("ingest - WAL record limit", () => {
  it("record limit - records up to max_payload less the header room pass; the first one over is named with the limit and a row count that fits", () => {
    const max = 1 << 20;
    expect(maxRecordBytes(max)).toBe(max - WAL_HEADER_ROOM);
    expect(oversizeRecord("t", "x", [plan(0, max - WAL_HEADER_ROOM, 10)], max)).toBeUndefined();
    const over = oversizeRecord("t", "x", [plan(0, 100, 1), plan(3, 4 * max, 40_000), plan(5, 8 * max, 1)], max)!;
    expect(over).toMatchObject({ bucket: 3, bytes: 4 * max, rows: 40_000, maxBytes: max - WAL_HEADER_ROOM });
    expect(over.message).toMatch(/^tenant t table x: the batch's WAL record for bucket 3 is 4194304 bytes \(40000 rows\), over the WAL record limit of 1044480 bytes \(the NATS server's max_payload 1048576 less 4096 for headers\); nothing of this batch was stored; send it as smaller batches \(at most about \d+ rows/);
    const fit = Number(/at most about (\d+) rows/.exec(over.message)![1]);
    expect(fit).toBeLessThan(10_000);
    expect(fit).toBeGreaterThan(8_000);
  });

  it("record limit - an unknown max_payload (no server info yet) checks nothing", () => {
    expect(oversizeRecord("t", "x", [plan(0, 1 << 30, 1)], undefined)).toBeUndefined();
  });

  it("gateway - a batch the wal actor refuses as oversize is nacked RESOURCE_EXHAUSTED, not retryable, and the gateway stays ready", () => {
    const replies: SourceCommand[] = [];
    const appends: WalCommand[] = [];
    let send: (e: GatewayEvent) => void = () => {};
    const actor = createActor(
      gatewayMachine.provide({
        actors: {
          source: fromCallback<SourceCommand>(({ receive, sendBack }) => {
            send = sendBack;
            receive((c) => replies.push(c));
          }),
          wal: fromCallback<WalCommand>(({ receive }) => receive((c) => appends.push(c))),
        },
      }),
      { input: {} },
    ).start();
    send({ type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
    const batch = { id: 7, tenant: "default", table: "trades", wantsReply: true, rows: 3 };
    send({ type: "appendRefused", batch, message: "too big", code: "RESOURCE_EXHAUSTED" });
    expect(replies.at(-1)!.reply).toEqual({ v: 1, ok: false, tenant: "default", table: "trades", error: { code: "RESOURCE_EXHAUSTED", message: "too big", retryable: false } });
    expect(actor.getSnapshot().value).toBe("ready");
    expect(actor.getSnapshot().context.stats.failedAppends).toBe(0);
  });

  it("gateway - a failed append tells a client without a producer pair that a resend may store parts twice, and one with a pair that it is stored once", () => {
    const replies: SourceCommand[] = [];
    let send: (e: GatewayEvent) => void = () => {};
    createActor(
      gatewayMachine.provide({
        actors: {
          source: fromCallback<SourceCommand>(({ receive, sendBack }) => {
            send = sendBack;
            receive((c) => replies.push(c));
          }),
        },
      }),
      { input: {} },
    ).start();
    send({ type: "catalog", catalog: catalogOfCluster(DEFAULT_CLUSTER_SPEC) });
    const batch = { id: 8, tenant: "default", table: "trades", wantsReply: true, rows: 3 };
    send({ type: "appendFailed", batch: { ...batch, minted: true }, message: "timeout" });
    expect(replies.at(-1)!.reply).toMatchObject({ ok: false, error: { code: "UNAVAILABLE", retryable: true, message: expect.stringMatching(/it came without a producer pair, so records already stored may be stored again by a resend: send Px-Producer-Id/) } });
    send({ type: "appendFailed", batch, message: "timeout" });
    expect(replies.at(-1)!.reply).toMatchObject({ ok: false, error: { message: expect.stringMatching(/retry it unchanged \(same producer id and seq\) and it is stored once$/) } });
  });
});
