// The README cannot drift from the product (issue 21.4): the blocks marked
// `bash test` in its Quick start and Querying sections run as printed against
// `proxist up --demo` (on free ports: PX_NATS_URL and PX_GRPC point the commands
// at it, PX_SKIP_SETUP skips the machine set-up), and so do the queries `up
// --demo` prints. Every query must answer with rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freeBasePort, startLauncher } from "../launcher/launcher.js";
import type { Launcher } from "../launcher/launcher.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** The `bash test` blocks of the README sections whose headings are listed, in order. */
export function testedBlocks(markdown: string, sections: readonly string[]): string[] {
  const out: string[] = [];
  let section = "";
  let inBlock = false;
  let block: string[] = [];
  for (const line of markdown.split("\n")) {
    if (!inBlock && /^##\s/.test(line)) section = line.replace(/^##\s+/, "").trim();
    if (!inBlock && line.trim() === "```bash test" && sections.includes(section)) {
      inBlock = true;
      block = [];
    } else if (inBlock && line.trim() === "```") {
      inBlock = false;
      out.push(block.join("\n"));
    } else if (inBlock) block.push(line);
  }
  return out;
}

let launcher: Launcher;
let dir: string;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "px-readme-"));
  const base = await freeBasePort();
  launcher = await startLauncher(["--demo", "--rate", "2000", "--data-dir", dir, "--base-port", String(base)]);
  // PX_DATA_DIR: pxctl finds the admin credentials `up` wrote there (<data-dir>/auth), as with the default .data.
  env = { ...process.env, PX_SKIP_SETUP: "1", PX_DATA_DIR: dir, PX_NATS_URL: `nats://127.0.0.1:${base}`, PX_GRPC: `127.0.0.1:${base + 5}`, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? ""}` };
  // The operator examples look back 10 s for as-of and window joins: let the feed run a little.
  await new Promise((r) => setTimeout(r, 3_000));
}, 180_000);

afterAll(async () => {
  await launcher?.kill("SIGTERM");
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const bash = (script: string): string => execFileSync("bash", ["-euo", "pipefail", "-c", script], { cwd: root, env, encoding: "utf8", timeout: 240_000 });

/** Row counts of every "(N rows)" line scripts/query.py printed. */
const rowCounts = (out: string): number[] => [...out.matchAll(/^\((\d+) rows\)$/gm)].map((m) => Number(m[1]));

describe("README - examples run as printed", () => {
  it("readme - the Quick start and Querying blocks answer every query with rows", () => {
    const blocks = testedBlocks(readFileSync(join(root, "README.md"), "utf8"), ["Quick start", "Querying"]);
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    const queries = blocks.join("\n").match(/scripts\/query\.py|^q '/gm)?.length ?? 0;
    const out = bash(blocks.join("\n"));
    const counts = rowCounts(out);
    expect(counts, out).toHaveLength(queries - 1); // `q() { ... scripts/query.py ... }` defines, not runs
    expect(counts.every((n) => n > 0), out).toBe(true);
    // Plausible: the well-known symbols and datetimes, not 1970 microseconds.
    expect(out).toMatch(/AAPL/);
    expect(out).toMatch(new RegExp(`${new Date().getUTCFullYear()}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`));
  }, 300_000);

  it("readme - the queries `up --demo` prints run as printed, with the token it printed", () => {
    const printed = launcher.output().split("\n");
    const from = printed.findIndex((l) => /Every symbol has ticked/.test(l));
    expect(from, launcher.output()).toBeGreaterThan(0);
    const lines = printed.slice(from + 1).filter((l) => /^\s{2}(export TOKEN=|.*scripts\/query\.py)/.test(l));
    expect(lines).toHaveLength(4);
    // PX_GRPC is printed because the test runs on other ports; the env does the same for the README blocks.
    const out = bash(lines.map((l) => l.trim()).join("\n"));
    const counts = rowCounts(out);
    expect(counts, out).toHaveLength(3);
    expect(counts.every((n) => n > 0), out).toBe(true);
    expect(out).toMatch(/NVDA/);
  }, 300_000);
});
