// Process IO of pxctl query / pxctl sql: stdout (text and bytes), stdin, the
// interactive prompt (readline with history in ~/.pxctl_history) and Ctrl-C
// ending --watch. The logic lives in sqlquery.ts.
import { appendFileSync, readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { CliError } from "./exitcodes.js";
import { parseQueryArgs, runQuery, runSqlPrompt } from "./sqlquery.js";
import type { Prompt, QueryIo } from "./sqlquery.js";

const HISTORY = join(homedir(), ".pxctl_history");

function readlinePrompt(): Prompt {
  let history: string[] = [];
  try {
    history = readFileSync(HISTORY, "utf8").split("\n").filter((l) => l !== "").reverse().slice(0, 500);
  } catch {
    // no history yet
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY, history, historySize: 500 });
  const lines: string[] = [];
  const waiting: ((l: string | undefined) => void)[] = [];
  let closed = false;
  rl.on("line", (l) => {
    if (l.trim() !== "" && process.stdin.isTTY) {
      try {
        appendFileSync(HISTORY, `${l}\n`, { mode: 0o600 });
      } catch {
        // history is a convenience: an unwritable home directory does not stop the prompt
      }
    }
    const w = waiting.shift();
    if (w) w(l);
    else lines.push(l);
  });
  rl.on("close", () => {
    closed = true;
    waiting.splice(0).forEach((w) => w(undefined));
  });
  return {
    line: (p) => {
      if (lines.length > 0) return Promise.resolve(lines.shift());
      if (closed) return Promise.resolve(undefined);
      rl.setPrompt(p);
      rl.prompt();
      return new Promise((resolve) => waiting.push(resolve));
    },
    close: () => rl.close(),
  };
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of process.stdin) parts.push(c as Buffer);
  return Buffer.concat(parts).toString("utf8");
}

/** Runs pxctl query or pxctl sql with the process's IO; returns the exit status. */
export async function queryMain(argv: readonly string[]): Promise<number> {
  const io: QueryIo = {
    stdout: (t) => process.stdout.write(`${t}\n`),
    stderr: (t) => process.stderr.write(`${t}\n`),
    stdoutBytes: (b) => process.stdout.write(b),
    stdoutIsTty: process.stdout.isTTY === true,
    writeFile: (p, b) => writeFile(p, b),
    readFile: (p) => readFile(p, "utf8"),
    readStdin,
    env: process.env,
  };
  try {
    const inv = parseQueryArgs(argv, process.env);
    if (inv.kind === "sql") return await runSqlPrompt(inv, io, readlinePrompt());
    const stop = new AbortController();
    process.once("SIGINT", () => stop.abort());
    return await runQuery(inv, io, stop.signal);
  } catch (e) {
    if (e instanceof CliError) {
      io.stderr(e.message);
      return e.code;
    }
    throw e;
  }
}
