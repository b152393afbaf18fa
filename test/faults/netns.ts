// The fault suite's private network: one Linux network namespace per member
// (NATS servers, Proxist nodes), each with a veth pair whose host end is
// enslaved to a bridge in the root namespace holding the gateway address, all
// on a /24 of 10.77.X.0 no interface here uses. Partitions are iptables DROP
// rules inside a member's namespace, so deleting the namespace removes them
// with its veth: close() deletes the namespaces and the bridge, and create()
// first deletes what a crashed run left (names carry the creating process's
// PID; those of dead PIDs go). clickhouse-server stays on loopback in the root
// namespace; members reach it through a TCP relay on the bridge address.
// Needs root (ip netns, iptables): without it, create() fails saying so.
import { execFileSync } from "node:child_process";
import { alive } from "./pids.js";
import { createServer, connect as tcpConnect } from "node:net";
import type { Server, Socket } from "node:net";

const PREFIX = "pxf";

export class NetworkNeedsRootError extends Error {}

function run(args: readonly string[]): string {
  try {
    return execFileSync(args[0]!, args.slice(1), { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${args.join(" ")} failed: ${(err.stderr ?? err.message).trim()}`, { cause: e });
  }
}

/** Deletes namespaces `pxf-<pid>-*` and links `pxf<pid>*` whose creating process is gone (a crashed run's). */
export function removeLeftovers(): string[] {
  const removed: string[] = [];
  for (const line of run(["ip", "netns", "list"]).split("\n")) {
    const m = /^(pxf-(\d+)-\S+)/.exec(line);
    if (m && !alive(Number(m[2]))) {
      run(["ip", "netns", "delete", m[1]!]);
      removed.push(m[1]!);
    }
  }
  for (const line of run(["ip", "-o", "link", "show"]).split("\n")) {
    const m = /^\d+: (pxf(\d+)[a-z]\w*)[@:]/.exec(line);
    if (m && !alive(Number(m[2]))) {
      try {
        run(["ip", "link", "delete", m[1]!]);
        removed.push(m[1]!);
      } catch {
        // a veth end goes with its peer's namespace
      }
    }
  }
  return removed;
}

export interface Member {
  readonly name: string;
  /** The namespace's name (for `ip netns exec`). */
  readonly netns: string;
  readonly address: string;
}

export class Network {
  readonly members = new Map<string, Member>();
  /** Members with partition rules in place. */
  private readonly cut = new Set<string>();
  private readonly relays: Server[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly gateway: string,
    private readonly bridge: string,
  ) {}

  /** Makes the bridge and a namespace per name (short names: "n1", "s2"). */
  static create(names: readonly string[]): Network {
    if (process.getuid?.() !== 0) {
      throw new NetworkNeedsRootError(
        `the fault suite's network (ip netns, veth pairs, iptables partitions) needs root; this process runs as uid ${process.getuid?.()}: run the suite as root (CI does)`,
      );
    }
    removeLeftovers();
    const used = new Set([...run(["ip", "-o", "-4", "addr", "show"]).matchAll(/inet 10\.77\.(\d+)\./g)].map((m) => Number(m[1])));
    const free = Array.from({ length: 250 }, (_, i) => i + 1).filter((x) => !used.has(x));
    if (free.length === 0) throw new Error("no free 10.77.X.0/24 for the fault suite's network: delete stale pxf* bridges (ip -o -4 addr show)");
    const x = free[Math.floor(Math.random() * free.length)]!;
    const pid = process.pid;
    const net = new Network(`10.77.${x}.1`, `${PREFIX}${pid}b`);
    try {
      run(["ip", "link", "add", net.bridge, "type", "bridge"]);
      run(["ip", "addr", "add", `${net.gateway}/24`, "dev", net.bridge]);
      run(["ip", "link", "set", net.bridge, "up"]);
      names.forEach((name, i) => {
        const ns = `${PREFIX}-${pid}-${name}`;
        const veth = `${PREFIX}${pid}v${name}`;
        const address = `10.77.${x}.${10 + i}`;
        run(["ip", "netns", "add", ns]);
        run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]);
        run(["ip", "link", "set", veth, "master", net.bridge, "up"]);
        run(["ip", "-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
        run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
        run(["ip", "-n", ns, "link", "set", "lo", "up"]);
        net.members.set(name, { name, netns: ns, address });
      });
    } catch (e) {
      void net.close();
      throw e;
    }
    return net;
  }

  member(name: string): Member {
    const m = this.members.get(name);
    if (!m) throw new Error(`no network member ${name} (members: ${[...this.members.keys()].join(", ")})`);
    return m;
  }

  /** Where a process of member `name` runs: its namespace and address (what nats.ts and nodeproc.ts take). */
  place(name: string): { name: string; address: string } {
    const m = this.member(name);
    return { name: m.netns, address: m.address };
  }

  /**
   * Cuts `name` off from `peers` both ways (iptables DROP in its namespace, so
   * packets vanish: no RST, connections hang until their timeouts). With
   * `port`, only traffic to or from that port of the peers (e.g. the
   * ClickHouse relay on the gateway).
   */
  partition(name: string, peers: readonly string[], port?: number): void {
    const ns = this.member(name).netns;
    for (const p of peers) {
      const addr = this.members.get(p)?.address ?? p;
      const out = port === undefined ? [] : ["-p", "tcp", "--dport", String(port)];
      const inn = port === undefined ? [] : ["-p", "tcp", "--sport", String(port)];
      run(["ip", "netns", "exec", ns, "iptables", "-A", "OUTPUT", "-d", addr, ...out, "-j", "DROP"]);
      run(["ip", "netns", "exec", ns, "iptables", "-A", "INPUT", "-s", addr, ...inn, "-j", "DROP"]);
    }
    this.cut.add(name);
  }

  /** Removes every partition rule of `name` (all when omitted). */
  heal(name?: string): void {
    for (const n of name === undefined ? [...this.cut] : [name]) {
      const ns = this.member(n).netns;
      run(["ip", "netns", "exec", ns, "iptables", "-F", "INPUT"]);
      run(["ip", "netns", "exec", ns, "iptables", "-F", "OUTPUT"]);
      this.cut.delete(n);
    }
  }

  /** A TCP relay on the gateway address to `127.0.0.1:port` of the root namespace (ClickHouse); returns its port. */
  async relay(port: number): Promise<number> {
    const server = createServer((inbound) => {
      const outbound = tcpConnect(port, "127.0.0.1");
      for (const s of [inbound, outbound]) {
        this.sockets.add(s);
        s.once("close", () => this.sockets.delete(s));
        s.on("error", () => {
          inbound.destroy();
          outbound.destroy();
        });
      }
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, this.gateway, resolve));
    this.relays.push(server);
    return (server.address() as { port: number }).port;
  }

  /** Deletes every namespace (their veths and iptables rules go with them) and the bridge; stops the relays. */
  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.relays.map((r) => new Promise((res) => r.close(res))));
    const errors: string[] = [];
    for (const m of this.members.values()) {
      try {
        run(["ip", "netns", "delete", m.netns]);
      } catch (e) {
        errors.push((e as Error).message);
      }
    }
    this.members.clear();
    try {
      run(["ip", "link", "delete", this.bridge]);
    } catch (e) {
      if (!/Cannot find device/.test((e as Error).message)) errors.push((e as Error).message);
    }
    if (errors.length > 0) throw new Error(`the fault suite's network was not removed whole: ${errors.join("; ")}`);
  }
}
