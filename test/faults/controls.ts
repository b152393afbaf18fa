// Negative controls of the chaos checker (issue 19): each breaks one guarantee
// on purpose and returns what the checker (checker.ts) then reports, so a
// clean chaos run means something. Used by controls.int.test.ts (which asserts
// each violation is found) and bench/chaos.ts (negative_controls_detected).
//   dedup-off   the tenant's WAL stream made with a duplicate window of 100 ms
//               (JetStream's least) instead of 2 minutes, then a publisher
//               resends an acknowledged batch with the same producer id and
//               seq (a retry) seconds later: D expected.
//   landed-off  sinks without the landed check (PX_SINK_UNSAFE_SKIP_LANDED_CHECK=1,
//               the switch test/sink uses) and a node SIGKILLed right after an
//               INSERT committed, before its watermark (faultnode's
//               sink.after-insert): its successor writes those rows again: D expected.
//   dropped     an acknowledged batch deleted from ClickHouse (ALTER TABLE …
//               DELETE of its rows) after it was persisted: L expected.
//   fence-off   sinks without the fence (PX_FENCE_OFF=1, the switch of
//               src/node/shard/host.ts) whose INSERTs stall 2 s before they are
//               sent and are then sent regardless (faultnode's
//               sink.stalled-insert); the owner of the tenant's shards is
//               SIGSTOPped inside such a stall, its shards move, SIGCONT: its
//               stale INSERT lands after the new owner wrote the same rows: D
//               expected. Runs last: it restarts both nodes (landed check on,
//               so only the missing fence can duplicate).
// One harness (2 nodes, both with the landed check off: only the landed-off
// control crashes a sink, so only it can duplicate through that), a tenant each.
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { createToken } from "../../src/auth/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { qualifiedTable } from "../../src/clickhouse/index.js";
import { storeLimits } from "../../src/config/limits.js";
import { ensureWalStream } from "../../src/wal/streams.js";
import { walStream } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, TableSpec } from "../../protocols/tablespec.js";
import { WatermarkLog } from "../helpers/sink.js";
import { bySource, clickhouseRows, emptyFindings, summarize } from "./checker.js";
import type { Findings } from "./checker.js";
import { Harness } from "./harness.js";
import { readBack } from "./run.js";
import { Ledger, Producer, RID_STRIDE, ingest } from "./workload.js";

export const CONTROLS = { "dedup-off": "ncdedup", "landed-off": "nclanded", dropped: "ncdrop", "fence-off": "ncfence" } as const;
export type ControlName = keyof typeof CONTROLS;

export interface ControlResult {
  readonly name: ControlName;
  readonly findings: Findings;
  /** Acked batches of the control's tenant. */
  readonly acked: number;
  /** Rows the control broke on purpose (the batch resent or deleted; unknown for landed-off). */
  readonly broken: number;
}

export function controlsSpec(): ClusterSpec {
  return parseClusterSpec({
    tenants: Object.values(CONTROLS).map((name) => ({ name, tables: [{ name: "trades", shards: 2, retention: { hotSeconds: 1 }, columns: [{ name: "rid", type: "float64" }, { name: "pk", type: "float64" }] }] })),
  });
}

export function startControlsHarness(log: (l: string) => void): Promise<Harness> {
  // dedup-off's WAL is made before any node starts, with the shortest duplicate window JetStream takes (100 ms) and
  // otherwise as a node makes it: changing a live WAL stream's config was seen to stall a shard's consumer.
  const prepare = async (nc: NatsConnection): Promise<void> => {
    await ensureWalStream(await jetstreamManager(nc), CONTROLS["dedup-off"], { replicas: 3, maxBytes: storeLimits().walMaxBytes, duplicateWindowMs: 100 });
  };
  return Harness.start({ spec: controlsSpec(), nodeIds: ["n1", "n2"], env: { PX_SINK_UNSAFE_SKIP_LANDED_CHECK: "1" }, log, prepare });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Controls {
  constructor(
    private readonly h: Harness,
    private readonly log: (l: string) => void,
  ) {}

  private table(tenant: string): TableSpec {
    return this.h.o.spec.tenants.find((t) => t.name === tenant)!.tables[0]!;
  }

  private ingest(tenant: string, ledger: Ledger): { stop(): Promise<void> } {
    return ingest(this.h.nc, tenant, this.table(tenant), ledger, { producers: 2, symbolsPerProducer: 4, rowsPerBatch: 100, pauseMs: 20 }, `${tenant}-${Date.now()}`);
  }

  private async ingestFor(tenant: string, ms: number): Promise<Ledger> {
    const ledger = new Ledger();
    const run = this.ingest(tenant, ledger);
    await sleep(ms);
    await run.stop();
    return ledger;
  }

  /** The checker's findings after the sinks caught up (or `persistTimeoutMs` passed); `wm` stays open. */
  private async check(tenant: string, ledger: Ledger, wm: WatermarkLog, persistTimeoutMs = 60_000): Promise<Findings> {
    const token = await createToken(this.h.nc, { tenant, role: "reader", replicas: 3 });
    const f = emptyFindings();
    await readBack(this.h, tenant, "trades", ledger, token, wm, f, this.log, persistTimeoutMs);
    this.log(`control ${tenant}: ${ledger.acks.length} batches acked; duplicated by source ${JSON.stringify(bySource(f.duplicated))}, lost by source ${JSON.stringify(bySource(f.lost))}; ${summarize(f)}`);
    return f;
  }

  private watermarks(tenant: string): WatermarkLog {
    return new WatermarkLog(this.h.nc, this.h.clickhouse.ch, tenant, this.table(tenant));
  }

  async dedupOff(): Promise<ControlResult> {
    const tenant = CONTROLS["dedup-off"];
    const spec = this.table(tenant);
    const wm = this.watermarks(tenant);
    try {
      const ledger = await this.ingestFor(tenant, 3_000);
      if (ledger.acks.length < 3) throw new Error(`control dedup-off: only ${ledger.acks.length} batches acked in 3 s`);
      const window = (await (await jetstreamManager(this.h.nc)).streams.info(walStream(tenant))).config.duplicate_window;
      if (window !== 100_000_000) throw new Error(`control dedup-off: the WAL's duplicate window is ${window} ns, not 100 ms (made by a node before the control's prepare?)`);
      await sleep(300);
      // The retry: the same producer id and seq, the same rows (rebuilt from the producer's numbering).
      const victim = ledger.acks[Math.floor(ledger.acks.length / 2)]!;
      const prod = new Producer(Number(/-p(\d+)$/.exec(victim.producerId)![1]), 4);
      prod.skip(victim.rids[0]! % RID_STRIDE);
      const { batch } = prod.batch(spec, victim.rids.length, new Ledger());
      const retry = new TickPublisher(this.h.nc, { tenant, spec, producerId: victim.producerId, firstSeq: BigInt(victim.seq), maxInFlight: 1 });
      const ack = await retry.publish(batch);
      this.log(`control dedup-off: resent ${victim.producerId} seq ${victim.seq} (first acked at LSNs ${victim.lsns.join(",")}): ${JSON.stringify(ack.appends)}`);
      if (ack.appends.some((a) => a.duplicate)) throw new Error("control dedup-off: the WAL still deduplicated the retry");
      return { name: "dedup-off", findings: await this.check(tenant, ledger, wm), acked: ledger.acks.length, broken: victim.rids.length };
    } finally {
      wm.close();
    }
  }

  async landedOff(): Promise<ControlResult> {
    const tenant = CONTROLS["landed-off"];
    const h = this.h;
    const wm = this.watermarks(tenant);
    try {
      // The owner of the tenant's first shard again, armed: it SIGKILLs itself right after its 3rd INSERT committed.
      const owner = (await h.liveShards()).get(`${tenant}.trades.0`)?.[0];
      if (owner === undefined) throw new Error(`control landed-off: ${tenant}.trades.0 is live nowhere`);
      await h.nodes.get(owner)!.kill("SIGKILL");
      h.nodes.delete(owner);
      const armed = await h.spawn(owner, { PX_FAILPOINTS: "sink.after-insert", PX_SINK_FAILPOINTS_AFTER: "3" });
      await h.waitSettled(90_000);
      const ledger = new Ledger();
      const run = this.ingest(tenant, ledger);
      try {
        const died = await Promise.race([armed.exited.then(() => true), sleep(60_000).then(() => false)]);
        if (!died) throw new Error(`control landed-off: the armed node ${owner} did not reach its failpoint in 60 s`);
        h.nodes.delete(owner);
        await h.spawnRetrying(owner); // unarmed; the landed check stays off
        await sleep(2_000);
      } finally {
        await run.stop();
      }
      return { name: "landed-off", findings: await this.check(tenant, ledger, wm), acked: ledger.acks.length, broken: 0 };
    } finally {
      wm.close();
    }
  }

  async dropped(): Promise<ControlResult> {
    const tenant = CONTROLS.dropped;
    const wm = this.watermarks(tenant);
    try {
      const ledger = await this.ingestFor(tenant, 3_000);
      // Persisted first: the sink must not write the rows again after the delete.
      const clean = await this.check(tenant, ledger, wm);
      if (clean.lost.length > 0) throw new Error(`control dropped: rows lost before anything was dropped: ${summarize(clean)}`);
      const victim = ledger.acks[1]!;
      const url = this.h.clickhouse.server.httpUrl;
      const table = qualifiedTable(tenant, "trades");
      const where = `rid IN (${victim.rids.join(",")})`;
      await clickhouseRows(url, `ALTER TABLE ${table} DELETE WHERE ${where}`);
      // Mutations run in the background: wait until the rows are gone.
      for (let i = 0; i < 100 && Number((await clickhouseRows(url, `SELECT count() FROM ${table} WHERE ${where}`))[0]![0]) > 0; i++) await sleep(200);
      return { name: "dropped", findings: await this.check(tenant, ledger, wm, 5_000), acked: ledger.acks.length, broken: victim.rids.length };
    } finally {
      wm.close();
    }
  }

  async fenceOff(): Promise<ControlResult> {
    const tenant = CONTROLS["fence-off"];
    const h = this.h;
    const env = { PX_SINK_UNSAFE_SKIP_LANDED_CHECK: "0", PX_FENCE_OFF: "1", PX_FAILPOINTS: "sink.stalled-insert", PX_SINK_STALL_MS: "2000" };
    // One node at a time, so the other keeps the shards meanwhile.
    for (const id of h.o.nodeIds) {
      await h.nodes.get(id)?.kill("SIGKILL");
      h.nodes.delete(id);
      await h.spawn(id, env);
    }
    await h.waitSettled(90_000);
    const wm = this.watermarks(tenant);
    const ledger = new Ledger();
    const run = this.ingest(tenant, ledger);
    const frozen = (await h.liveShards()).get(`${tenant}.trades.0`)?.[0];
    if (frozen === undefined) throw new Error(`control fence-off: ${tenant}.trades.0 is live nowhere`);
    const p = h.nodes.get(frozen)!;
    try {
      // Every INSERT stalls 2 s before it is sent: 3 s into the ingest the owner's sinks are (most likely) inside one.
      await sleep(3_000);
      p.child.kill("SIGSTOP");
      this.log(`control fence-off: SIGSTOP ${frozen} (owner of ${tenant}.trades.0) inside a stalled INSERT`);
      await h.waitSettled(90_000); // the stopped node does not answer: its shards live on the other node
      await sleep(4_000); // the new owner writes the rows the frozen one holds
    } finally {
      p.child.kill("SIGCONT");
    }
    try {
      await sleep(4_000);
    } finally {
      await run.stop();
    }
    try {
      return { name: "fence-off", findings: await this.check(tenant, ledger, wm), acked: ledger.acks.length, broken: 0 };
    } finally {
      wm.close();
    }
  }
}

/** Every control in turn (fence-off last: it restarts the nodes). */
export async function runControls(c: Controls): Promise<ControlResult[]> {
  const out: ControlResult[] = [];
  for (const run of [() => c.dedupOff(), () => c.landedOff(), () => c.dropped(), () => c.fenceOff()]) out.push(await run());
  return out;
}

/** Whether the checker found what the control broke (and nothing it did not break). */
export function detected(r: ControlResult): boolean {
  const cold = (xs: readonly string[]): number => xs.filter((x) => x.startsWith("ClickHouse")).length;
  switch (r.name) {
    case "dedup-off":
    case "landed-off":
    case "fence-off":
      return cold(r.findings.duplicated) > 0 && r.findings.lost.length === 0;
    case "dropped":
      return cold(r.findings.lost) === r.broken && r.findings.duplicated.length === 0;
  }
}
