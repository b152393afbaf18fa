// pxctl against a standalone node (`proxist node`, default `--shards all`, no
// controller): the node answers px.ctl.* itself, names itself standalone, owns
// every shard, and shows its ClickHouse URL without credentials (issue 21.2, 21.3).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { natsFixture, nodeOn } from "../helpers/cluster.js";
import type { NatsFixture } from "../helpers/cluster.js";
import type { ProxistNode } from "../../src/node/node.js";
import { runPxctl } from "../../src/cli/commands.js";
import { EXIT } from "../../src/cli/exitcodes.js";
import { clickhouseDisplay } from "../../src/node/standalone.js";

let f: NatsFixture;
let node: ProxistNode;
beforeAll(async () => {
  f = await natsFixture();
  // A ClickHouse that is not there: the node runs (sinks back off); pxctl shows the URL it is configured with.
  node = await nodeOn(f.server, f.nc, { nodeId: "solo", clickhouseUrl: "http://px:secret@127.0.0.1:1/?password=secret" });
}, 60_000);
afterAll(async () => {
  await node?.stop();
  await f?.close();
});

async function pxctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runPxctl(["--nats", f.server.url, ...argv], { stdout: (t) => out.push(t), stderr: (t) => err.push(t), readFile: async () => "", prompt: async () => "y", env: { PX_NATS_CREDS: f.server.auth!.credsPath("admin") } });
  return { code, out: out.join("\n"), err: err.join("\n") };
}

describe("pxctl - standalone node", () => {
  it("standalone - pxctl status answers for a --shards all node: it names the mode and owns every shard", async () => {
    const r = await pxctl("status");
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out).toMatch(/leader: solo \(standalone: --shards all, no controller; it owns every shard\)/);
    type Status = { nodes: { id: string; clickhouse: string; shards: number }[]; shards: { shard: string; owner: string; state: string }[] };
    // Right after start a shard may still be starting (a CI run saw one not yet owned): the status settles within seconds.
    let status: Status | undefined;
    for (let i = 0; i < 100; i++) {
      const json = await pxctl("status", "-o", "json");
      expect(json.code, json.err).toBe(EXIT.ok);
      status = JSON.parse(json.out) as Status;
      if (status.shards.length === 8 && status.shards.every((s) => s.owner === "solo" && s.state !== "unassigned")) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(status!.nodes.map((n) => n.id)).toEqual(["solo"]);
    // The default spec: trades and quotes, 4 buckets each.
    expect(status!.shards).toHaveLength(8);
    expect(status!.shards.map((s) => `${s.shard} ${s.owner} ${s.state}`).filter((x) => !/ solo /.test(x) || / unassigned$/.test(x))).toEqual([]);
    expect(status!.nodes[0]!.shards).toBe(8);
  });

  it("standalone - pxctl move shard is refused: there is no other node", async () => {
    const r = await pxctl("move", "shard", "trades/0");
    expect(r.code, r.out).toBe(EXIT.other);
    expect(r.err).toMatch(/UNSUPPORTED: move: this node runs standalone \(--shards all\): there is no other node to move a shard to/);
  });

  it("standalone - pxctl snapshot ends once the node answered, not at its --wait", async () => {
    const t0 = Date.now();
    const r = await pxctl("snapshot", "default", "--wait", "20000", "-o", "json");
    const ms = Date.now() - t0;
    expect(r.code, r.err).toBe(EXIT.ok);
    expect((JSON.parse(r.out) as { node: string }[]).map((x) => x.node)).toEqual(["solo"]);
    // Gathering until the wait ran out took the whole 20 s; the node answers within a few.
    expect(ms).toBeLessThan(15_000);
  }, 30_000);

  it("standalone - the CLICKHOUSE column shows the configured URL without credentials", async () => {
    const r = await pxctl("get", "nodes");
    expect(r.code, r.err).toBe(EXIT.ok);
    expect(r.out).toMatch(/CLICKHOUSE/);
    expect(r.out).toContain("http://127.0.0.1:1");
    expect(r.out).not.toContain("secret");
    const json = JSON.parse((await pxctl("get", "nodes", "-o", "json")).out) as { clickhouse: string }[] | { items: { clickhouse: string }[] };
    const items = Array.isArray(json) ? json : json.items;
    expect(items[0]!.clickhouse).toBe("http://127.0.0.1:1");
  });

  it("standalone - clickhouseDisplay drops user, password and query; no ClickHouse reads none", () => {
    expect(clickhouseDisplay("http://u:p@ch.example:8123/?user=u&password=p")).toBe("http://ch.example:8123");
    expect(clickhouseDisplay("https://ch.example/proxy")).toBe("https://ch.example/proxy");
    expect(clickhouseDisplay(undefined)).toBe("none");
  });
});
