// Subscriber credentials with table grants (`pxctl creds create --role
// subscriber --tables quotes`): the feeds that read only granted tables (as
// the spec has them when minted), and those tables' watermarks. nats-server
// enforces it: a consumer may be created on the feed stream only with a granted
// feed's subject as its filter (nats.js and nats-py both put the filter in the
// API subject), and only granted subjects may be subscribed to. Negative
// control: the unrestricted subscriber of the same tenant reads both feeds.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { feedStream, feedSubject, watermarkSubject } from "../../protocols/subjects.js";
import { parseClusterSpec } from "../../protocols/tablespec.js";
import { natsCredsOptions } from "../../src/runtime/natsclient.js";
import { runPxctl } from "../../src/cli/commands.js";
import { tickBatchToIpc } from "../../src/codec/arrow.js";
import { SPEC, apiFixture, ingest, tableOf, trades } from "../api/fixture.js";
import type { ApiFixture } from "../api/fixture.js";
import { applyAndWait } from "../helpers/cluster.js";

const root = join(import.meta.dirname, "../..");
let f: ApiFixture;
const conns: NatsConnection[] = [];

beforeAll(async () => {
  f = await apiFixture();
  const raw = JSON.parse(JSON.stringify(SPEC)) as { tenants: { name: string; feeds?: unknown[] }[] };
  raw.tenants.find((t) => t.name === "alpha")!.feeds = [
    { name: "last_trades", query: { op: "lastBy", table: "trades" } },
    { name: "last_quotes", query: { op: "lastBy", table: "quotes" } },
  ];
  await applyAndWait(f.node.nc, parseClusterSpec(raw), f.node);
  const client = f.proxist();
  const writer = await f.token("alpha", "writer");
  const quotes = { rows: 2, symbols: ["AAPL"], symbolIndex: Uint32Array.of(0, 0), ts: Float64Array.of(1_700_300_000_000_000, 1_700_300_000_000_001), values: [Float64Array.of(1, 2), Float64Array.of(1.5, 2.5)] };
  const { error } = await ingest(client, writer, [
    { table: "trades", arrowIpc: tickBatchToIpc(tableOf("alpha", "trades"), trades(6, 1_700_300_000_000_000)) },
    { table: "quotes", arrowIpc: tickBatchToIpc(tableOf("alpha", "quotes"), quotes) },
  ]);
  expect(error).toBeUndefined();
  // Both feeds have published (the standalone node runs the feeds of px_config).
  const jsm = await jetstreamManager(f.node.nc);
  const deadline = Date.now() + 60_000;
  for (const name of ["last_trades", "last_quotes"]) {
    while ((await jsm.streams.getMessage(feedStream("alpha"), { last_by_subj: feedSubject("alpha", name) }).catch(() => null)) === null) {
      if (Date.now() > deadline) throw new Error(`feed ${name} published nothing within 60 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}, 180_000);
afterAll(async () => {
  for (const nc of conns) await nc.close().catch(() => {});
  await f?.close();
});

async function mint(...extra: string[]): Promise<{ file: string; feeds?: string[]; out: string }> {
  const out: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(`stderr: ${t}`), readFile: async () => "", prompt: async () => "", env: { PX_NATS_CREDS: f.nats.server.auth!.credsPath("admin"), PX_AUTH_DIR: f.nats.server.auth!.dir } };
  const file = join(f.nats.server.dir, `sub-${Math.random().toString(36).slice(2)}.creds`);
  const code = await runPxctl(["--nats", f.nats.server.url, "-o", "json", "creds", "create", "--tenant", "alpha", "--role", "subscriber", "--out", file, ...extra], io);
  if (code !== 0) return { file: "", out: out.join("\n") };
  return { file, ...(JSON.parse(out.at(-1)!) as { feeds?: string[] }), out: out.join("\n") };
}

/** The first message of `feed` through an ordered consumer (nats.js), or the error's text. */
async function firstOf(nc: NatsConnection, feed: string): Promise<string> {
  try {
    const c = await jetstream(nc).consumers.get(feedStream("alpha"), { filter_subjects: feedSubject("alpha", feed) });
    const m = await c.next({ expires: 3_000 });
    return m === null ? "no message" : "read";
  } catch (e) {
    return (e as Error).message;
  }
}

/** Whether a core subscription to `subject` is refused (the server reports the violation on the connection). */
async function subscribeRefused(nc: NatsConnection, subject: string): Promise<boolean> {
  const refused = (async () => {
    for await (const s of nc.status()) if (s.type === "error" && /permissions violation for subscription/i.test(String((s as { error?: Error }).error?.message ?? JSON.stringify(s)))) return true;
    return false;
  })();
  const sub = nc.subscribe(subject);
  const r = await Promise.race([refused, new Promise<boolean>((res) => setTimeout(() => res(false), 2_000))]);
  sub.unsubscribe();
  return r;
}

describe("security - subscriber table grants", () => {
  it("grants - a subscriber granted quotes reads the quotes feed; NATS refuses the trades feed (consumer and subject) and trades' watermarks; nats-py likewise", async () => {
    const m = await mint("--tables", "quotes");
    expect(m.feeds, m.out).toEqual(["last_quotes"]);
    const nc = await connect({ servers: f.nats.server.url, ...natsCredsOptions(m.file) });
    conns.push(nc);
    expect(await firstOf(nc, "last_quotes")).toBe("read");
    expect(await firstOf(nc, "last_trades")).toMatch(/permissions violation/i);
    expect(await subscribeRefused(nc, feedSubject("alpha", "last_trades"))).toBe(true);
    expect(await subscribeRefused(nc, watermarkSubject("alpha", "trades", 0))).toBe(true);
    expect(await subscribeRefused(nc, watermarkSubject("alpha", "quotes", 0))).toBe(false);
    // A real client: nats-py reads the granted feed and is refused the other.
    const py = (feed: string) => promisify(execFile)(`${root}/.venv/bin/python`, [`${root}/test/feed/nats_consumer.py`, f.nats.server.url, m.file, "alpha", feed, "1"], { timeout: 60_000 });
    const ok = await py("last_quotes");
    expect(JSON.parse(ok.stdout.trim().split("\n")[0]!)).toMatchObject({ kind: "update" });
    await expect(py("last_trades")).rejects.toThrow(/permissions violation|timeout/i);
  }, 120_000);

  it("grants - negative control: the unrestricted subscriber of the tenant reads both feeds; a table the tenant lacks is refused by name", async () => {
    const all = await mint();
    expect(all.feeds).toBeUndefined();
    const nc = await connect({ servers: f.nats.server.url, ...natsCredsOptions(all.file) });
    conns.push(nc);
    expect(await firstOf(nc, "last_quotes")).toBe("read");
    expect(await firstOf(nc, "last_trades")).toBe("read");
    const bad = await mint("--tables", "nosuch");
    expect(bad.file).toBe("");
    expect(bad.out).toMatch(/tenant alpha has no table nosuch/);
  }, 60_000);
});
