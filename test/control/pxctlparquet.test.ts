// pxctl query -o parquet without a node: the Accept it sends, where the bytes
// go (stdout when it is not a terminal, --out FILE), and the refusal to write
// binary to a terminal before anything is sent.
import { describe, expect, it } from "vitest";
import { CliError } from "../../src/cli/exitcodes.js";
import { parseQueryArgs, runQuery } from "../../src/cli/sqlquery.js";
import type { QueryIo } from "../../src/cli/sqlquery.js";

const PAR1 = new TextEncoder().encode("PAR1");

function io(tty: boolean) {
  const sent: { accept: string }[] = [];
  const stdout: Uint8Array[] = [];
  const files = new Map<string, Uint8Array>();
  const x: QueryIo = {
    stdout: () => {},
    stderr: () => {},
    stdoutBytes: (b) => stdout.push(b),
    stdoutIsTty: tty,
    writeFile: (p, b) => (files.set(p, b), Promise.resolve()),
    readFile: () => Promise.resolve(""),
    readStdin: () => Promise.resolve(""),
    env: {},
    fetch: ((_url: string, init: RequestInit) => {
      sent.push({ accept: (init.headers as Record<string, string>).accept! });
      return Promise.resolve(new Response(PAR1));
    }) as typeof fetch,
  };
  return { io: x, sent, stdout, files };
}

describe("pxctl query - parquet", () => {
  it("pxctl query - -o parquet asks for Parquet and writes the bytes to a pipe", async () => {
    const f = io(false);
    expect(await runQuery(parseQueryArgs(["query", "-o", "parquet", "SELECT * FROM trades"], {}), f.io)).toBe(0);
    expect(f.sent).toEqual([{ accept: "application/vnd.apache.parquet" }]);
    expect(f.stdout).toEqual([PAR1]);
  });

  it("pxctl query - --out FILE writes there, terminal or not", async () => {
    const f = io(true);
    expect(await runQuery(parseQueryArgs(["query", "-o", "parquet", "--out", "r.parquet", "SELECT * FROM trades"], {}), f.io)).toBe(0);
    expect(f.files.get("r.parquet")).toEqual(PAR1);
    expect(f.stdout).toEqual([]);
  });

  it("pxctl query - -o parquet to a terminal is refused before the query is sent, naming the fix", async () => {
    const f = io(true);
    const e = await runQuery(parseQueryArgs(["query", "-o", "parquet", "SELECT * FROM trades"], {}), f.io).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).message).toMatch(/-o parquet: stdout is a terminal; redirect it \(> result.parquet\) or pass --out result.parquet/);
    expect(f.sent).toEqual([]);
  });
});
