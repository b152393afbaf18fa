// The nemesis harness: a 3-server NATS cluster (R3 WAL and KV), one
// clickhouse-server and Proxist node processes in `--shards assigned` mode with
// sinks, and the faults of schedule.ts done to them: SIGKILL + restart of a
// node, SIGSTOP/SIGCONT of a node, SIGKILL + restart of the NATS server leading
// the tenant's WAL stream (or of any NATS server), SIGSTOP/SIGCONT of
// clickhouse-server, the WAL's store full (walfull.ts; or a NATS server's
// disk, diskfull.ts). One fault at a time; each ends healed (restarted or
// continued) before the next starts, and heal() repairs whatever an aborted
// fault left. With `network` (netns.ts, needs root) every NATS server and node
// runs in a network namespace of its own, and partitions cut them apart:
// a node from every NATS server, a NATS server from its peers (its clients
// still reach it), a node from ClickHouse.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { walStream } from "../../protocols/subjects.js";
import type { ClusterSpec } from "../../protocols/tablespec.js";
import { MetadataStore } from "../../src/control/index.js";
import { natsCluster } from "../control/natscluster.js";
import type { NatsCluster } from "../control/natscluster.js";
import { spawnNodeProcess } from "../helpers/nodeproc.js";
import type { NodeProcess } from "../helpers/nodeproc.js";
import type { NodeShard } from "../helpers/replay.js";
import { clickhouseFixture } from "../helpers/sink.js";
import type { ClickhouseFixture } from "../helpers/sink.js";
import { InsertRefusal } from "./chrefuse.js";
import { Clocks, clockOffsetOf } from "./clock.js";
import { SmallDisks } from "./diskfull.js";
import { Network } from "./netns.js";
import { WalFull } from "./walfull.js";
import type { Fault } from "./schedule.js";

/** The part of nats-server's /jsz?accounts=true&streams=true that walReplicas reads. */
interface JszView {
  readonly disabled?: boolean;
  readonly account_details?: readonly { readonly stream_detail?: readonly { readonly name: string; readonly cluster?: { readonly leader?: string }; readonly state: { readonly first_seq: number; readonly last_seq: number; readonly messages: number } }[] }[];
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface HarnessOptions {
  readonly spec: ClusterSpec;
  readonly nodeIds: readonly string[];
  /** Added to every node's environment (PX_REPLICAS=3 is always set). */
  readonly env?: Readonly<Record<string, string>>;
  /** Per node id, added on top of `env` (e.g. a failpoint on one node only). */
  readonly nodeEnv?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly log?: (line: string) => void;
  /** Runs on the NATS cluster before the spec is applied (and so before any node creates a stream). */
  readonly prepare?: (nc: NatsConnection) => Promise<void>;
  /** Every NATS server and node in a network namespace of its own (netns.ts; needs root): the partition faults need it. */
  readonly network?: boolean;
  /** Every node with libfaketime preloaded (clock.ts): the clock-jump fault needs it. */
  readonly clocks?: boolean;
  /**
   * Every NATS server's directory on a small tmpfs of its own (diskfull.ts;
   * needs root): the nats-disk-full fault then fills one to ENOSPC instead of
   * filling the WAL's store limit (walfull.ts). See diskFullMode.
   */
  readonly smallDisks?: boolean;
}

/** Each NATS server's tmpfs with smallDisks, MiB: room for a run's WAL and KV, filled whole by the fault. */
const DISK_MB = 768;

export class Harness {
  readonly nodes = new Map<string, NodeProcess>();
  /** Processes this harness stopped (SIGSTOP) or killed and has not yet continued or restarted. */
  private readonly broken = new Set<string>();
  /** Faults injected, by kind. */
  readonly injected = new Map<string, number>();
  private readonly log: (line: string) => void;
  readonly clocks: Clocks | undefined;
  private readonly refusal: InsertRefusal;
  /** The nats-disk-full fault in force (store-limit mode). */
  private walFull: WalFull | undefined;

  private constructor(
    readonly o: HarnessOptions,
    readonly nats: NatsCluster,
    readonly nc: NatsConnection,
    readonly clickhouse: ClickhouseFixture,
    readonly net: Network | undefined,
    /** The ClickHouse URL the nodes use (through the network's relay when there is one). */
    readonly clickhouseUrl: string,
    readonly disks: SmallDisks | undefined,
  ) {
    this.log = o.log ?? (() => {});
    this.clocks = o.clocks ? new Clocks() : undefined;
    this.refusal = new InsertRefusal(clickhouse.server);
  }

  static async start(o: HarnessOptions): Promise<Harness> {
    const net = o.network ? Network.create([...["s1", "s2", "s3"], ...o.nodeIds]) : undefined;
    let disks: SmallDisks | undefined;
    let h: Harness;
    try {
      disks = o.smallDisks ? SmallDisks.create(3, DISK_MB) : undefined;
      const [nats, clickhouse] = await Promise.all([natsCluster(3, { ...(net ? { netns: (i: number) => net.place(`s${i + 1}`) } : {}), ...(disks ? { dirs: disks.dirs } : {}) }), clickhouseFixture()]);
      const nc = await nats.connect("nemesis");
      const url = net ? `http://${net.gateway}:${await net.relay(clickhouse.server.httpPort)}` : clickhouse.server.httpUrl;
      h = new Harness(o, nats, nc, clickhouse, net, url, disks);
    } catch (e) {
      try {
        disks?.close();
      } catch {
        // a server still holding it: the next run's create() unmounts it
      }
      await net?.close().catch(() => {});
      throw e;
    }
    try {
      await o.prepare?.(h.nc);
      await (await MetadataStore.open(h.nc, 3)).applyCurrent(o.spec);
      await Promise.all(o.nodeIds.map((id) => h.spawnRetrying(id)));
    } catch (e) {
      await h.close();
      throw e;
    }
    return h;
  }

  /** Starts node `id` (again); `env` overrides its environment for this start only. */
  async spawn(id: string, env: Readonly<Record<string, string>> = {}): Promise<NodeProcess> {
    const args = ["--shards", "assigned", "--node-id", id, "--grpc-port", "0", "--clickhouse", this.clickhouseUrl];
    const p = await spawnNodeProcess(
      this.nats.urls,
      { PX_REPLICAS: "3", ...this.clocks?.env(id), ...this.o.env, ...this.o.nodeEnv?.[id], ...env },
      args,
      { ...(this.net ? { netns: this.net.place(id) } : {}), ...(this.clocks ? { preload: [this.clocks.lib] } : {}) },
    );
    this.nodes.set(id, p);
    return p;
  }

  /** Node ids with a process that is running (not killed, not stopped). */
  runningNodes(): string[] {
    return [...this.nodes.keys()].filter((id) => !this.broken.has(`node:${id}`));
  }

  /** Does `f` and undoes it after its hold time; returns what was done. */
  async inject(f: Fault): Promise<string> {
    const what = await this.start(f);
    this.injected.set(f.kind, (this.injected.get(f.kind) ?? 0) + 1);
    this.log(`nemesis: ${what}, hold ${f.holdMs} ms`);
    await sleep(f.holdMs);
    if (f.kind === "nats-disk-full") this.log(`nemesis: disk full, end of hold: ${this.walFull ? await this.walFull.state().catch((e: unknown) => `no stream info (${(e as Error).message})`) : await this.walReplicas()}`);
    await this.heal();
    // Each server's own copy of the WAL after every fault: a replica whose first sequence moves shows when and where.
    this.log(`nemesis: healed ${f.kind}: ${await this.walReplicas()}`);
    return what;
  }

  private async start(f: Fault): Promise<string> {
    const ids = this.o.nodeIds;
    switch (f.kind) {
      case "node-kill": {
        const id = ids[f.target % ids.length]!;
        this.broken.add(`node:${id}`);
        await this.nodes.get(id)?.kill("SIGKILL");
        this.nodes.delete(id);
        return `SIGKILL node ${id}`;
      }
      case "node-pause": {
        const id = ids[f.target % ids.length]!;
        this.broken.add(`node:${id}`);
        this.nodes.get(id)?.child.kill("SIGSTOP");
        return `SIGSTOP node ${id}`;
      }
      case "nats-leader-kill": {
        const i = await this.walLeader();
        await this.killNats(i);
        return `SIGKILL nats server px${i + 1} (WAL stream leader)`;
      }
      case "nats-kill": {
        const i = f.target % this.nats.servers.length;
        await this.killNats(i);
        return `SIGKILL nats server px${i + 1}`;
      }
      case "clickhouse-pause": {
        this.broken.add("clickhouse");
        await this.clickhouse.server.kill("SIGSTOP");
        return "SIGSTOP clickhouse-server";
      }
      case "partition-node-nats": {
        const id = ids[f.target % ids.length]!;
        this.network(f.kind).partition(id, ["s1", "s2", "s3"]);
        this.broken.add(`net:${id}`);
        return `partition: node ${id} cut from every NATS server`;
      }
      case "partition-nats": {
        const i = f.target % this.nats.servers.length;
        const me = `s${i + 1}`;
        this.network(f.kind).partition(me, ["s1", "s2", "s3"].filter((s) => s !== me));
        this.broken.add(`net:${me}`);
        return `partition: NATS server px${i + 1} cut from its peers (its clients still reach it)`;
      }
      case "clock-jump": {
        const id = ids[f.target % ids.length]!;
        if (!this.clocks) throw new Error(`fault ${f.kind} needs nodes with libfaketime (HarnessOptions.clocks)`);
        const skew = f.skewS ?? 10;
        this.clocks.set(id, skew);
        this.broken.add(`clock:${id}`);
        // libfaketime re-reads the offset every second (of a loaded machine): the node's own HTTP Date header (1 s
        // resolution, itself cached for a second) must show it within 15 s.
        const p = this.nodes.get(id);
        let seen: number | undefined;
        for (const until = Date.now() + 15_000; p && Date.now() < until; ) {
          await sleep(1_000);
          seen = await clockOffsetOf(p.host, p.httpPort);
          if (seen !== undefined && Math.abs(seen - skew) <= 2.5) break;
        }
        if (seen !== undefined && Math.abs(seen - skew) > 2.5) throw new Error(`clock-jump: node ${id}'s clock was set ${skew} s off, its HTTP Date header still says ${seen.toFixed(1)} s after 15 s: libfaketime not in force`);
        return `clock: node ${id}'s wall clock ${skew > 0 ? "+" : ""}${skew} s (its Date header: ${seen === undefined ? "no answer" : `${seen > 0 ? "+" : ""}${seen.toFixed(1)} s`})`;
      }
      case "nats-disk-full": {
        if (!this.disks) {
          // The store of a server whose max_file_store is below its disk: the WAL's limit refuses appends (walfull.ts).
          const tenant = this.o.spec.tenants[0]!.name;
          this.broken.add("walfull");
          this.walFull = await WalFull.fill(await jetstreamManager(this.nc, { timeout: 5_000 }), tenant);
          return `WAL store full: ${walStream(tenant)}'s max_bytes lowered to ${this.walFull.capBytes} bytes (what it held plus 8 MiB), filled with ${this.walFull.fillerCount} filler records (${await this.walFull.state()})`;
        }
        const i = f.target % this.nats.servers.length;
        this.log(`nemesis: before disk full: ${await this.walReplicas()}`);
        const bytes = this.disks.fill(i);
        this.broken.add(`disk:${i}`);
        return `disk full: NATS server px${i + 1}'s store (${(bytes / 2 ** 20).toFixed(0)} MiB filler on its ${DISK_MB} MiB tmpfs)`;
      }
      case "clickhouse-refuse": {
        this.broken.add("refuse");
        const ms = await this.refusal.start();
        return `ClickHouse refuses every INSERT (read-only profile, in force after ${ms} ms)`;
      }
    }
  }

  private network(kind: string): Network {
    if (!this.net) throw new Error(`fault ${kind} needs the harness's network (HarnessOptions.network)`);
    return this.net;
  }

  /**
   * The WAL stream as each NATS server holds it (its /jsz: first..last
   * sequence, messages, leader or not), one line; a server that does not
   * answer in 2 s says so.
   */
  async walReplicas(): Promise<string> {
    const stream = walStream(this.o.spec.tenants[0]!.name);
    const views = await Promise.all(
      this.nats.servers.map(async (s) => {
        const url = `http://${s.options.netns?.address ?? "127.0.0.1"}:${s.monitorPort}/jsz?accounts=true&streams=true`;
        try {
          const jsz = (await (await fetch(url, { signal: AbortSignal.timeout(2_000) })).json()) as JszView;
          if (jsz.disabled) return `${s.options.serverName}: JetStream disabled`;
          const st = jsz.account_details?.flatMap((a) => a.stream_detail ?? []).find((d) => d.name === stream);
          if (!st) return `${s.options.serverName}: no ${stream}`;
          const lead = st.cluster?.leader === s.options.serverName ? " leader" : "";
          return `${s.options.serverName}: ${st.state.first_seq}..${st.state.last_seq} (${st.state.messages} msgs)${lead}`;
        } catch (e) {
          return `${s.options.serverName}: no answer (${(e as Error).message})`;
        }
      }),
    );
    return `${stream} per server: ${views.join("; ")}`;
  }

  /** Index of the NATS server leading the first tenant's WAL stream (a random one when no leader is known, e.g. mid-election). */
  async walLeader(): Promise<number> {
    const tenant = this.o.spec.tenants[0]!.name;
    try {
      const jsm = await jetstreamManager(this.nc, { timeout: 5_000 });
      const leader = (await jsm.streams.info(walStream(tenant))).cluster?.leader;
      const i = this.nats.servers.findIndex((s) => s.options.serverName === leader);
      if (i >= 0) return i;
    } catch {
      // fall through: no answer in time
    }
    return Math.floor(Math.random() * this.nats.servers.length);
  }

  private async killNats(i: number): Promise<void> {
    this.broken.add(`nats:${i}`);
    this.nats.servers[i]!.kill("SIGKILL");
    await sleep(100);
  }

  /** Continues and restarts everything a fault left stopped or dead. */
  async heal(): Promise<void> {
    for (const b of [...this.broken]) {
      const [kind, name] = b.split(":") as [string, string | undefined];
      if (kind === "clickhouse") await this.clickhouse.server.kill("SIGCONT");
      else if (kind === "net") {
        this.net?.heal(name);
        // A NATS server back from a partition catches up before the next fault (as after a restart).
        if (name!.startsWith("s")) await this.waitNatsWhole(Number(name!.slice(1)) - 1, performance.now());
      } else if (kind === "clock") this.clocks?.set(name!, 0);
      else if (kind === "refuse") await this.refusal.heal();
      else if (kind === "walfull") {
        await this.walFull?.release();
        this.walFull = undefined;
      }
      else if (kind === "disk") {
        const i = Number(name);
        this.disks?.release(i);
        // A server whose store write failed may have switched JetStream off for good: restarted when not whole soon.
        await this.waitNatsWhole(i, performance.now(), 20_000).catch(async (e: unknown) => {
          this.log(`nemesis: px${i + 1} not whole 20 s after its disk was freed (${(e as Error).message.split("\n")[0]}): restarting it`);
          this.nats.servers[i]!.kill("SIGKILL");
          await this.restartNats(i);
        });
      }
      else if (kind === "nats") await this.restartNats(Number(name));
      else if (kind === "node") {
        const p = this.nodes.get(name!);
        if (p) p.child.kill("SIGCONT");
        else await this.spawnRetrying(name!);
      }
      this.broken.delete(b);
    }
  }

  /**
   * Restarts NATS server `i` and waits until it is healthy and the WAL stream
   * has a leader and every replica current again, so the next fault starts on
   * a whole cluster. A restarted server's /healthz waits for its streams to
   * catch up, which was seen to take over 30 s on a loaded machine: the wait
   * goes on (bounded) past nats.ts's 30 s.
   */
  private async restartNats(i: number): Promise<void> {
    const t0 = performance.now();
    await this.nats.servers[i]!.restart().catch((e: unknown) => this.log(`nemesis: px${i + 1} not healthy within 30 s of its restart (${(e as Error).message}), waiting on`));
    await this.waitNatsWhole(i, t0);
  }

  /** Waits until NATS server `i` answers and the WAL stream has a leader and every replica current. */
  private async waitNatsWhole(i: number, t0: number, timeoutMs = 120_000): Promise<void> {
    const s = this.nats.servers[i]!;
    const deadline = Date.now() + timeoutMs;
    const tenant = this.o.spec.tenants[0]!.name;
    let health: string;
    for (;;) {
      // /healthz of a restarted cluster member was seen failing for minutes while the WAL stream was whole and
      // current (it also judges every other stream and consumer): logged, not waited for.
      health = await fetch(`http://${s.options.netns?.address ?? "127.0.0.1"}:${s.monitorPort}/healthz`, { signal: AbortSignal.timeout(3_000) }).then(
        async (r) => (r.ok ? "ok" : (await r.text()).trim()),
        (e: unknown) => `unreachable (${(e as Error).message})`,
      );
      const info = await jetstreamManager(this.nc, { timeout: 3_000 })
        .then((jsm) => jsm.streams.info(walStream(tenant)))
        .catch(() => undefined);
      const whole = info?.cluster?.leader !== undefined && (info.cluster.replicas ?? []).length === 2 && (info.cluster.replicas ?? []).every((r) => r.current && !r.offline);
      if (!health.startsWith("unreachable") && whole) break;
      if (Date.now() > deadline) throw new Error(`NATS server px${i + 1} back (restarted, partition healed or disk freed) but the cluster is not whole after ${timeoutMs / 1000} s: healthz ${health}, WAL stream ${JSON.stringify(info?.cluster)}`);
      await sleep(250);
    }
    if (health !== "ok") this.log(`nemesis: px${i + 1} /healthz: ${health}`);
    this.log(`nemesis: px${i + 1} back, WAL stream whole after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  /** A restart can miss its 30 s readiness window on a loaded machine while shards move: try again. */
  async spawnRetrying(id: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.spawn(id);
        return;
      } catch (e) {
        if (attempt >= 3) throw e;
        this.log(`nemesis: restart of ${id} failed (${(e as Error).message.split("\n")[0]}), again`);
      }
    }
  }

  /** shard key -> node ids reporting it live (running.live or running.snapshotting). */
  async liveShards(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    await Promise.all(
      [...this.nodes].map(async ([id, p]) => {
        // A timeout: a node just continued from SIGSTOP may take a moment to answer.
        const res = await fetch(`http://${p.host}:${p.httpPort}/v1/shards`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        const list = ((await res?.json().catch(() => [])) ?? []) as NodeShard[];
        for (const s of list) if (/running\.(live|snapshotting)/.test(s.state)) out.set(`${s.tenant}.${s.table}.${s.bucket}`, [...(out.get(`${s.tenant}.${s.table}.${s.bucket}`) ?? []), id]);
      }),
    );
    return out;
  }

  /** Waits until every shard of the spec is live on exactly one node. */
  async waitSettled(timeoutMs: number): Promise<void> {
    const keys = this.o.spec.tenants.flatMap((t) => t.tables.flatMap((s) => Array.from({ length: s.shards }, (_, b) => `${t.name}.${s.name}.${b}`)));
    const deadline = Date.now() + timeoutMs;
    let view = new Map<string, string[]>();
    while (Date.now() < deadline) {
      view = await this.liveShards();
      if (keys.every((k) => view.get(k)?.length === 1)) return;
      await sleep(200);
    }
    const bad = new Set(keys.filter((k) => view.get(k)?.length !== 1));
    const states = await Promise.all(
      [...this.nodes].map(async ([id, p]) => {
        const res = await fetch(`http://${p.host}:${p.httpPort}/v1/shards`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        const list = ((await res?.json().catch(() => [])) ?? []) as (NodeShard & { error?: string })[];
        return list.filter((s) => bad.has(`${s.tenant}.${s.table}.${s.bucket}`)).map((s) => `${id}: ${s.tenant}.${s.table}.${s.bucket} ${s.state}${s.error ? ` (${s.error})` : ""}`);
      }),
    );
    throw new Error(
      `shards not live exactly once after ${timeoutMs} ms: ${keys.map((k) => `${k}=${(view.get(k) ?? []).join("+") || "-"}`).join(", ")}\nthose shards on the nodes: ${states.flat().join("; ") || "none reported"}\n${this.tails(30)}`,
    );
  }

  /**
   * With PX_FAULTS_NATS_LOGS=DIR: every NATS server's log copied to DIR
   * before the small disks holding them are unmounted (a failed run's
   * evidence of what JetStream did).
   */
  private keepNatsLogs(): void {
    const dir = process.env.PX_FAULTS_NATS_LOGS;
    if (!dir) return;
    mkdirSync(dir, { recursive: true });
    for (const s of this.nats.servers) {
      try {
        copyFileSync(join(s.dir, "nats.log"), join(dir, `${s.options.serverName}-${process.pid}-${Date.now()}.log`));
      } catch (e) {
        this.log(`nemesis: ${s.options.serverName}'s log not kept: ${(e as Error).message}`);
      }
    }
  }

  /** Last lines of every node's output (for failure messages). */
  tails(lines = 15): string {
    return [...this.nodes].map(([id, p]) => `--- ${id}\n${p.output().split("\n").slice(-lines).join("\n")}`).join("\n");
  }

  async close(): Promise<void> {
    await this.heal().catch(() => {});
    // Whole node logs to replay a finding (PX_CHAOS_LOG_DIR=dir): the failure message holds only their tails.
    const logDir = process.env.PX_CHAOS_LOG_DIR;
    if (logDir !== undefined) {
      mkdirSync(logDir, { recursive: true });
      for (const [id, p] of this.nodes) writeFileSync(join(logDir, `${id}-${Date.now()}.log`), p.output());
    }
    for (const p of this.nodes.values()) {
      p.child.kill("SIGCONT");
      await p.kill("SIGKILL");
    }
    this.nodes.clear();
    try {
      await this.nc.close().catch(() => {});
      // Before close(), which deletes the servers' directories when they are not on small disks.
      this.keepNatsLogs();
      await this.nats.close();
      await this.clickhouse.close();
    } finally {
      this.clocks?.close();
      try {
        this.disks?.close();
      } finally {
        await this.net?.close();
      }
    }
  }
}
