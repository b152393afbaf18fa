// The ingest status fold (src/ingest/status.ts) over WAL records' Nats-Msg-Ids.
import { describe, expect, it } from "vitest";
import { ProducerIndex } from "../../src/ingest/status.js";
import { parseWalMsgId, walMsgId } from "../../protocols/subjects.js";

describe("ingest - status index", () => {
  it("msg ids - a batch's first record (producer:seq) and the others (producer:seq:table:bucket) name the pair; anything else none", () => {
    expect(parseWalMsgId("p1:18446744073709551615")).toEqual({ producerId: "p1", seq: 18446744073709551615n });
    expect(parseWalMsgId(walMsgId("p-2", 5n, "trades", 3))).toEqual({ producerId: "p-2", seq: 5n });
    for (const bad of ["", "p1", "p1:x", ":3", "p1:3:trades", "anchor-default"]) expect(parseWalMsgId(bad)).toBeUndefined();
  });

  it("index - the highest seq wins whatever the LSN order; its records are counted; records without a pair only advance the scan", () => {
    const ix = new ProducerIndex();
    ix.add(1, undefined, undefined);
    ix.add(2, "a:2", 2);
    ix.add(3, "a:1:trades:0", undefined); // an older batch stored later (concurrent appends)
    ix.add(4, "a:2:trades:5", undefined);
    ix.add(5, "b:9:trades:1", undefined);
    ix.add(6, "a:3", 3);
    expect(ix.scannedTo).toBe(6);
    expect(ix.status("a")).toEqual({ producerId: "a", lastSeq: "3", lastLsn: 6, records: 1, batchRecords: 3, missing: [], cut: ["3"] });
    expect(ix.all().map((p) => [p.producerId, p.lastSeq, p.records])).toEqual([
      ["a", "3", 1],
      ["b", "9", 1],
    ]);
    expect(ix.status("c")).toBeUndefined();
  });

  it("index - seqs below the highest with no record are missing (from the producer's first seq, within the last 1024); a shortened list says so", () => {
    const ix = new ProducerIndex();
    ix.add(1, "p:5", 1);
    ix.add(2, "p:7", 1);
    ix.add(3, "p:10", 1);
    expect(ix.status("p")).toMatchObject({ lastSeq: "10", missing: ["6", "8", "9"], cut: [] });
    expect(ix.status("p", 2)).toMatchObject({ missing: ["6", "8"], more: true });
    ix.add(4, "p:5000", 1);
    const far = ix.status("p")!;
    expect(far.missing).toHaveLength(1023);
    expect(far.missing[0]).toBe(String(5000 - 1023));
  });
});
