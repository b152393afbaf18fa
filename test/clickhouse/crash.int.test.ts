// The server dies, stalls or loses its client mid-INSERT: what is committed,
// how errors are classified, and that restarts keep committed data. Runs the
// installed clickhouse-server (18.16 here); 18.16-only facts are marked.
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TableSpec } from "../../protocols/tablespec.js";
import {
  ClickhouseHttp,
  ClickhouseUnavailableError,
  detectServer,
  encodeRowBinary,
  ensureSchema,
  insertRowBinary,
  insertRowBinarySql,
  landedLsns,
  landedRows,
  queryRunning,
  waitQueryGone,
} from "../../src/clickhouse/index.js";
import type { ClickhouseVersion } from "../../src/clickhouse/index.js";
import { startClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { DAY0, allTypesSpec, plainBatch } from "./batches.js";

const TENANT = "crash";
let server: ClickhouseServer;
let ch: ClickhouseHttp;
let version: ClickhouseVersion;
let tableNo = 0;

beforeAll(async () => {
  server = await startClickhouseServer();
  ch = new ClickhouseHttp({ url: server.httpUrl, requestTimeoutMs: 30_000 });
  version = (await detectServer(ch)).version;
});

afterAll(async () => {
  ch?.close();
  await server?.dispose();
});

async function freshTable(): Promise<TableSpec> {
  const spec = allTypesSpec(`t${++tableNo}`);
  await ensureSchema(ch, TENANT, spec);
  return spec;
}

async function count(spec: TableSpec): Promise<number> {
  return Number(await ch.query(`SELECT count() FROM px_${TENANT}.${spec.name} FORMAT TabSeparated`));
}

/**
 * Sends an INSERT over a raw socket and ends the connection after `cutAt`
 * body bytes, as a client process killed mid-request would (its kernel closes
 * the socket: the server reads end-of-file). Resolves with the server's
 * status line once the server has answered or closed.
 */
async function interruptedInsert(spec: TableSpec, body: Buffer, cutAt: number, extraParams = ""): Promise<string> {
  const sock = connect(server.httpPort, "127.0.0.1");
  await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
  let answer = "";
  sock.on("data", (d: Buffer) => (answer += d.toString("latin1")));
  const closed = new Promise<void>((resolve) => sock.once("close", () => resolve()));
  sock.on("error", () => undefined);
  const q = encodeURIComponent(insertRowBinarySql(TENANT, spec));
  sock.write(`POST /?query=${q}${extraParams} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`);
  sock.end(body.subarray(0, cutAt));
  await closed;
  return answer.split("\r\n")[0] ?? "";
}

describe("server handle", () => {
  it("server - restart keeps ports and data, and gives a new process", async () => {
    const spec = await freshTable();
    await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(100, DAY0), { lsn: 1, shard: 0 }));
    const { httpPort, tcpPort, pid } = server;
    await server.restart();
    expect([server.httpPort, server.tcpPort]).toEqual([httpPort, tcpPort]);
    expect(server.pid).not.toBe(pid);
    expect(server.running).toBe(true);
    expect(await count(spec)).toBe(100);
  });

  it("server - an acknowledged INSERT survives SIGKILL and restart", async () => {
    const spec = await freshTable();
    await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(5_000, DAY0), { lsn: 7, shard: 2 }));
    await server.kill("SIGKILL");
    expect(server.running).toBe(false);
    await server.restart();
    expect([...(await landedLsns(ch, TENANT, spec.name, 2, 0, 100))]).toEqual([[7, 5_000]]);
  });
});

/** Waits until process `pid` is stopped (state T in /proc/<pid>/stat), at most 5 s. */
async function stoppedState(pid: number): Promise<void> {
  const state = (): string => {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3);
  };
  for (const end = Date.now() + 5_000; state() !== "T"; ) {
    if (Date.now() > end) throw new Error(`clickhouse-server ${pid} is in state ${state()} 5 s after SIGSTOP`);
    await sleep(10);
  }
}

describe("unavailable", () => {
  it("unavailable - a stopped server gives ClickhouseUnavailableError that certainly did not land", async () => {
    const spec = await freshTable();
    await server.stop();
    try {
      expect(await ch.ping()).toBe(false);
      const err = await insertRowBinary(ch, TENANT, spec, encodeRowBinary(spec, plainBatch(10, DAY0), { lsn: 1, shard: 0 })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClickhouseUnavailableError);
      expect(err).toMatchObject({ code: "ECONNREFUSED", mayHaveLanded: false });
      expect((err as Error).message).toMatch(/unavailable.*retry/);
    } finally {
      await server.restart();
    }
    expect(await count(spec)).toBe(0);
  });

  it("unavailable - a stalled server times out as unavailable, possibly landed", async () => {
    const stalled = new ClickhouseHttp({ url: server.httpUrl, requestTimeoutMs: 500 });
    await server.kill("SIGSTOP");
    try {
      // Asked only once the kernel shows the server stopped (state T): a CI run got its answer, the stop not yet in effect.
      await stoppedState(server.pid);
      const err = await stalled.query("SELECT 1").catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ClickhouseUnavailableError);
      expect(err).toMatchObject({ code: "ETIMEDOUT", mayHaveLanded: true });
    } finally {
      await server.kill("SIGCONT");
      stalled.close();
    }
    expect(await ch.query("SELECT 1")).toBe("1\n");
  });

  it("unavailable - SIGKILL during an INSERT: the caller sees unavailable, and the batch is all there or absent", async () => {
    const spec = await freshTable();
    const rows = 1_000_000;
    const body = encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 42, shard: 1 });
    const pending = insertRowBinary(ch, TENANT, spec, body, { rows }).then(
      () => "acknowledged" as const,
      (e: unknown) => e,
    );
    await sleep(100);
    await server.kill("SIGKILL");
    const outcome = await pending;
    await server.restart();
    const landed = await landedLsns(ch, TENANT, spec.name, 1, 0, 100);
    if (outcome === "acknowledged") {
      expect([...landed]).toEqual([[42, rows]]);
    } else {
      expect(outcome).toBeInstanceOf(ClickhouseUnavailableError);
      expect(outcome).toMatchObject({ mayHaveLanded: true });
      expect([[], [[42, rows]]]).toContainEqual([...landed]);
    }
  });
});

describe("abandoned INSERT", () => {
  it("abandoned - a client that sent the whole body and hung up still gets its rows committed, later", async () => {
    const spec = await freshTable();
    const rows = 1_000_000;
    const body = encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 77, shard: 0 });
    const queryId = `sink-${spec.name}-77-attempt1`;
    const sock = connect(server.httpPort, "127.0.0.1");
    await new Promise<void>((resolve, reject) => sock.once("connect", resolve).once("error", reject));
    const q = encodeURIComponent(insertRowBinarySql(TENANT, spec));
    sock.write(`POST /?query=${q}&query_id=${queryId} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`);
    await new Promise<void>((resolve, reject) => sock.write(body, (err) => (err ? reject(err) : resolve())));
    sock.destroy();
    // Asking right away can say "not landed" for rows that are about to land...
    const seenBy = Date.now() + 10_000;
    while (!(await queryRunning(ch, queryId)) && Date.now() < seenBy) await sleep(10);
    expect(await queryRunning(ch, queryId)).toBe(true);
    // ...so the sink waits for the query id to disappear, and only then asks.
    expect(await waitQueryGone(ch, queryId, { timeoutMs: 30_000 })).toBe(true);
    expect([...(await landedLsns(ch, TENANT, spec.name, 0, 0, 100))]).toEqual([[77, rows]]);
  });

  it("abandoned - a client-side timeout is unavailable, carries the query id, and the answer after waitQueryGone is final", async () => {
    const spec = await freshTable();
    const rows = 1_000_000;
    const body = encodeRowBinary(spec, plainBatch(rows, DAY0), { lsn: 78, shard: 0 });
    const queryId = `sink-${spec.name}-78-attempt1`;
    const outcome = await insertRowBinary(ch, TENANT, spec, body, { rows, queryId, timeoutMs: 150 }).then(
      () => "acknowledged" as const,
      (e: unknown) => e,
    );
    if (outcome !== "acknowledged") {
      expect(outcome).toBeInstanceOf(ClickhouseUnavailableError);
      expect(outcome).toMatchObject({ code: "ETIMEDOUT", mayHaveLanded: true, queryId });
    }
    expect(await waitQueryGone(ch, queryId, { timeoutMs: 30_000 })).toBe(true);
    const landed = (await landedLsns(ch, TENANT, spec.name, 0, 0, 100)).get(78) ?? 0;
    await sleep(500);
    expect(await count(spec)).toBe(landed);
    expect(Array.from(await landedRows(ch, TENANT, spec.name, 0, 78))).toEqual(Array.from({ length: landed }, (_, i) => i));
  });
});

describe("interrupted client (facts the sink relies on)", () => {
  const rowsSent = 2_000;
  it("interrupted - a body cut mid-row commits nothing", async () => {
    const spec = await freshTable();
    const body = encodeRowBinary(spec, plainBatch(5_000, DAY0, ["AAPL"]), { lsn: 9, shard: 0 });
    const rowBytes = body.length / 5_000;
    const status = await interruptedInsert(spec, body, rowsSent * rowBytes + 5);
    expect(status).not.toMatch(/ 200 /);
    expect(await count(spec)).toBe(0);
  });

  it("interrupted - a body cut at a row boundary commits the rows sent (a prefix) on 18.16", async () => {
    const spec = await freshTable();
    const body = encodeRowBinary(spec, plainBatch(5_000, DAY0, ["AAPL"]), { lsn: 9, shard: 0 });
    const rowBytes = body.length / 5_000;
    const status = await interruptedInsert(spec, body, rowsSent * rowBytes);
    const landed = await landedLsns(ch, TENANT, spec.name, 0, 0, 100);
    const rows = await landedRows(ch, TENANT, spec.name, 0, 9);
    // Whatever landed is a prefix in body order, and landedLsns/landedRows agree with count().
    expect(Array.from(rows)).toEqual(Array.from({ length: rows.length }, (_, i) => i));
    expect(landed.get(9) ?? 0).toBe(await count(spec));
    if (version.major === 18) {
      // The server cannot tell a short body from a complete one: it commits and answers 200.
      expect([...landed]).toEqual([[9, rowsSent]]);
      expect(status).toBe("HTTP/1.1 200 OK");
    }
  });

  it("interrupted - blocks squashed into one part commit nothing when the cut is mid-row", async () => {
    // 1000-row parse blocks are squashed up to min_insert_block_size_rows before anything is written.
    const spec = await freshTable();
    const body = encodeRowBinary(spec, plainBatch(5_000, DAY0, ["AAPL"]), { lsn: 9, shard: 0 });
    const rowBytes = body.length / 5_000;
    await interruptedInsert(spec, body, 3_500 * rowBytes + 5, "&max_insert_block_size=1000");
    expect(await count(spec)).toBe(0);
  });

  it("interrupted - a body larger than the squashing threshold, cut mid-row, commits its first blocks on 18.16", async () => {
    const spec = await freshTable();
    const body = encodeRowBinary(spec, plainBatch(5_000, DAY0, ["AAPL"]), { lsn: 9, shard: 0 });
    const rowBytes = body.length / 5_000;
    await interruptedInsert(spec, body, 3_500 * rowBytes + 5, "&max_insert_block_size=1000&min_insert_block_size_rows=1000");
    const n = await count(spec);
    expect(Array.from(await landedRows(ch, TENANT, spec.name, 0, 9))).toEqual(Array.from({ length: n }, (_, i) => i));
    if (version.major === 18) expect(n).toBe(3_000);
  });

  it("interrupted - with default settings, a cut body over 1048576 rows commits the first 1048576 rows on 18.16", async () => {
    const spec = await freshTable();
    const rows = 1_100_000;
    const body = encodeRowBinary(spec, plainBatch(rows, DAY0, ["AAPL"]), { lsn: 9, shard: 0 });
    const rowBytes = body.length / rows;
    await interruptedInsert(spec, body, 1_090_000 * rowBytes + 5);
    const n = await count(spec);
    expect((await landedLsns(ch, TENANT, spec.name, 0, 0, 100)).get(9) ?? 0).toBe(n);
    if (version.major === 18) expect(n).toBe(1_048_576);
  });
});
