// Fenced sinks across processes: a 3-server NATS cluster, a real
// clickhouse-server and two Proxist node processes in `--shards assigned`
// mode, both with sinks. The owner of shards is SIGSTOPped while ingest goes
// on (so it holds pending batches); the control plane moves its shards to the
// other node, whose sinks persist; SIGCONT: the old owner's permits lapsed and
// px_assign revoked them, so it writes nothing. ClickHouse ends with every WAL
// row exactly once by (_lsn, _row) and P never went backwards. Negative
// control: the same with PX_FENCE_OFF=1 finds duplicates. Then the same with
// clickhouse-server SIGSTOPped while the owner's INSERT runs (and the owner
// after it, its body cut short): every row exactly once, P never decreases.
// (No negative control of its own yet: with ClickHouse's write fence and the
// new owner's wait for earlier INSERTs both switched off the resumed INSERT
// still did not land in three tries; see the README's Limitations.)
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frozenClickhouse, frozenOwner } from "../helpers/frozenowner.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";

let chf: ClickhouseFixture;

beforeAll(async () => {
  chf = await clickhouseFixture();
});
afterAll(async () => {
  await chf?.close();
});

describe("fenced sinks - node processes", () => {
  it("fence - the owner SIGSTOPped with pending batches, its shards move, SIGCONT: 0 duplicates in ClickHouse, P never decreases", async () => {
    const { report, watermarks, frozen } = await frozenOwner(chf, "fcl", false);
    expect(report).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    expect(watermarks.decreased).toEqual([]);
    expect(watermarks.ahead).toEqual([]);
    // The resumed owner saw it had lost its lease (lapsed permit or px_assign's revocation), or its
    // agent, finding its heartbeat stale, stopped its shards before a held INSERT came due.
    expect(frozen).toMatch(/fenced|lease revision \d+ (expired|revoked)|no heartbeat stored for a while; stopped every shard/);
  }, 300_000);

  it("fence - negative control: the same with PX_FENCE_OFF=1 finds duplicates in ClickHouse", async () => {
    const { report } = await frozenOwner(chf, "fcloff", true);
    console.log(`fence off: ${JSON.stringify(report)}`);
    expect(report.duplicates).toBeGreaterThan(0);
  }, 300_000);

  it("fence - clickhouse-server SIGSTOPped during the owner's INSERT, then the owner; its shards move; both resume: 0 duplicates, P never decreases", async () => {
    const { report, watermarks, unsent, inFlight, log } = await frozenClickhouse(chf, "fclch");
    // inFlight (whether ClickHouse was seen running the old owner's INSERT after it resumed) is a
    // diagnostic, not asserted: it depends on how much of the body arrived before the freeze.
    console.log(`unsent ${unsent} bytes, INSERT seen in flight ${inFlight || "no"}: ${JSON.stringify(report)}`);
    // The scenario happened: the owner froze with an INSERT on its way to the frozen server.
    expect(unsent).toBeGreaterThan(0);
    expect(report, log.slice(-4000)).toMatchObject({ duplicates: 0, missing: 0, unexpected: 0 });
    expect(watermarks.decreased).toEqual([]);
    expect(watermarks.ahead).toEqual([]);
  }, 300_000);
});
