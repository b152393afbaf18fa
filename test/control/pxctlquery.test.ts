// pxctl query / pxctl sql without a node: argument parsing, which words make
// the command, the table rendering, --watch stopping, the prompt's lines.
import { describe, expect, it } from "vitest";
import { CliError } from "../../src/cli/exitcodes.js";
import { parseQueryArgs, queryCommandOf, resultTable, runQuery, runSqlPrompt } from "../../src/cli/sqlquery.js";
import type { QueryIo } from "../../src/cli/sqlquery.js";

const answer = { columns: [{ name: "sym" }, { name: "price" }], rows: [["AAPL", 1.5], ["MSFT", null]], complete: true, notes: [] };

function fakeIo(respond: (body: string) => Response = () => Response.json(answer)): QueryIo & { out: string[]; err: string[]; sent: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const sent: string[] = [];
  return {
    out,
    err,
    sent,
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    stdoutBytes: () => {},
    readFile: () => Promise.resolve("SELECT 1"),
    readStdin: () => Promise.resolve(""),
    env: {},
    fetch: ((_url: string, init: RequestInit) => {
      sent.push(String(init.body));
      return Promise.resolve(respond(String(init.body)));
    }) as typeof fetch,
  };
}

describe("pxctl query - arguments", () => {
  it("pxctl query - the command word is found past global flags and their values", () => {
    expect(queryCommandOf(["-o", "json", "query", "SELECT"])).toBe("query");
    expect(queryCommandOf(["--nats", "query", "status"])).toBeUndefined();
    expect(queryCommandOf(["sql"])).toBe("sql");
    expect(queryCommandOf(["status"])).toBeUndefined();
  });

  it("pxctl query - defaults from the environment, flags win", () => {
    const inv = parseQueryArgs(["query", "SELECT * FROM trades"], { PX_HTTP_URL: "http://h:1/", PX_TOKEN: "t" });
    expect(inv).toMatchObject({ kind: "query", url: "http://h:1", token: "t", output: "table", text: "SELECT * FROM trades", watchSeconds: undefined });
    expect(parseQueryArgs(["query", "--url", "http://x:2", "--token", "u", "-o", "csv", "--watch", "500ms", "-"], {})).toMatchObject({ url: "http://x:2", token: "u", output: "csv", text: undefined, watchSeconds: 0.5 });
    expect(parseQueryArgs(["sql"], {}).url).toBe("http://127.0.0.1:8080");
    expect(parseQueryArgs(["sql"], { TOKEN: "quickstart" }).token).toBe("quickstart");
  });

  it.each([
    [["query", "-o", "yaml", "x"], /-o yaml: use table, json, csv, arrow or parquet/],
    [["query", "--watch", "soon", "x"], /--watch soon: give an interval/],
    [["query", "a", "b"], /one argument \(quote it\)/],
    [["sql", "SELECT 1"], /the prompt reads statements itself/],
    [["query", "--bogus"], /Unknown option/],
  ])("pxctl query - %j is a usage error", (argv, why) => {
    let e: unknown;
    try {
      parseQueryArgs(argv, {});
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(CliError);
    expect((e as CliError).code).toBe(2);
    expect((e as Error).message).toMatch(why);
  });
});

describe("pxctl query - running", () => {
  it("pxctl query - a result as a table with its row count and notes", () => {
    expect(resultTable(answer)).toBe("sym   price\nAAPL  1.5\nMSFT\n(2 rows)");
    expect(resultTable({ ...answer, rows: [], complete: false, notes: ["shard t.1 missing"] })).toBe("(none)\n(0 rows, INCOMPLETE)\nnote: shard t.1 missing");
  });

  it("pxctl query - an HTTP refusal prints the server's message and exits by its kind", async () => {
    const io = fakeIo(() => Response.json({ error: "SQL: OR in WHERE is not supported" }, { status: 400 }));
    expect(await runQuery(parseQueryArgs(["query", "SELECT"], {}), io)).toBe(2);
    expect(io.err).toEqual(["error (HTTP 400): SQL: OR in WHERE is not supported"]);
  });

  it("pxctl query - --watch reruns until stopped", async () => {
    const io = fakeIo();
    const stop = new AbortController();
    const inv = parseQueryArgs(["query", "--watch", "10ms", "SELECT 1"], {});
    const done = runQuery(inv, io, stop.signal);
    while (io.sent.length < 3) await new Promise((r) => setTimeout(r, 5));
    stop.abort();
    expect(await done).toBe(0);
    expect(io.out.filter((l) => l.includes("(2 rows)")).length).toBeGreaterThanOrEqual(3);
  });

  it("pxctl sql - continued lines, a trailing ; and \\o csv; \\q ends", async () => {
    const io = fakeIo((body) => (body.includes("csv") ? new Response("a,b\n1,2\n") : Response.json(answer)));
    const lines = ["SELECT sym \\", "FROM trades;", "\\o csv", "SELECT 'csv'", "\\q", "SELECT never"];
    const prompt = { line: () => Promise.resolve(lines.shift()), close: () => {} };
    expect(await runSqlPrompt(parseQueryArgs(["sql"], {}), io, prompt)).toBe(0);
    expect(io.sent).toEqual(["SELECT sym \nFROM trades", "SELECT 'csv'"]);
    expect(io.out).toEqual(["sym   price\nAAPL  1.5\nMSFT\n(2 rows)", "a,b\n1,2"]);
  });
});
