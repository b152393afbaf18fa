// ClickHouse refusing every INSERT for a while (the clickhouse-refuse fault):
// the default user's profile is made read-only (readonly=2: reads and their
// settings still go; INSERT, CREATE, ALTER get code 164 READONLY) by
// rewriting the server's users.xml, which clickhouse-server re-reads on its
// own within seconds. A probe INSERT into a table of the nemesis's own tells
// when the refusal (and, after heal, the acceptance) is in force.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { ClickhouseServer } from "../../src/runtime/servers/clickhouse.js";
import { clickhouseRows } from "./checker.js";

const PROBE = "default.px_nemesis_probe";
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class InsertRefusal {
  private original: string | undefined;

  constructor(private readonly server: ClickhouseServer) {}

  private get usersFile(): string {
    return join(this.server.dir, "users.xml");
  }

  private async probe(): Promise<"accepted" | "refused"> {
    await clickhouseRows(this.server.httpUrl, `CREATE TABLE IF NOT EXISTS ${PROBE} (x UInt8) ENGINE = Log`).catch(() => {});
    const res = await fetch(this.server.httpUrl, { method: "POST", body: `INSERT INTO ${PROBE} VALUES (1)`, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (res.ok) return "accepted";
    if (/Code: 164/.test(text)) return "refused";
    throw new Error(`the nemesis's probe INSERT failed otherwise than read-only: ${text.slice(0, 300)}`);
  }

  private async until(want: "accepted" | "refused", timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      if ((await this.probe().catch(() => undefined)) === want) return Date.now() - t0;
      if (Date.now() - t0 > timeoutMs) throw new Error(`ClickHouse did not turn ${want === "refused" ? "read-only" : "writable"} within ${timeoutMs} ms of the users.xml change (${this.usersFile})`);
      await sleep(250);
    }
  }

  /** Makes every INSERT fail (READONLY) and waits until it does; returns how long that took, ms. */
  async start(): Promise<number> {
    const xml = readFileSync(this.usersFile, "utf8");
    this.original ??= xml;
    const ro = xml.replace(/<profiles>\s*<default>/, (m) => `${m}\n      <readonly>2</readonly>`);
    if (ro === xml) throw new Error(`no default profile to make read-only in ${this.usersFile}`);
    writeFileSync(this.usersFile, ro);
    return this.until("refused");
  }

  /** Restores users.xml and waits until INSERTs are accepted again. */
  async heal(): Promise<number> {
    if (this.original === undefined) return 0;
    writeFileSync(this.usersFile, this.original);
    this.original = undefined;
    return this.until("accepted");
  }
}
