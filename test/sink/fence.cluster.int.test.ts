// Fenced sinks across processes: a 3-server NATS cluster, a real
// clickhouse-server and two Proxist node processes in `--shards assigned`
// mode, both with sinks. The owner of shards is SIGSTOPped while ingest goes
// on (so it holds pending batches); the control plane moves its shards to the
// other node, whose sinks persist; SIGCONT: the old owner's permits lapsed and
// px_assign revoked them, so it writes nothing. ClickHouse ends with every WAL
// row exactly once by (_lsn, _row) and P never went backwards. Negative
// control: the same with PX_FENCE_OFF=1 finds duplicates.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { frozenOwner } from "../helpers/frozenowner.js";
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
    // The resumed owner saw it had lost its lease (lapsed permit or px_assign's revocation).
    expect(frozen).toMatch(/fenced|lease revision \d+ (expired|revoked)/);
  }, 300_000);

  it("fence - negative control: the same with PX_FENCE_OFF=1 finds duplicates in ClickHouse", async () => {
    const { report } = await frozenOwner(chf, "fcloff", true);
    console.log(`fence off: ${JSON.stringify(report)}`);
    expect(report.duplicates).toBeGreaterThan(0);
  }, 300_000);
});
