#!/usr/bin/env -S node --import tsx
// pxctl entry point: wires process IO into runPxctl and exits with its status.
import { readFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { runPxctl } from "./commands.js";
import { queryMain } from "./sqlmain.js";
import { queryCommandOf } from "./sqlquery.js";

// query and sql talk HTTP to a node, not control messages over NATS: their own parser and IO.
const code = queryCommandOf(process.argv.slice(2)) !== undefined ? await queryMain(process.argv.slice(2)) : await runPxctl(process.argv.slice(2), {
  stdout: (t) => process.stdout.write(t + "\n"),
  stderr: (t) => process.stderr.write(t + "\n"),
  readFile: (p) => readFile(p, "utf8"),
  prompt: (q) =>
    new Promise<string>((resolve) => {
      process.stderr.write(q);
      const rl = createInterface({ input: process.stdin });
      // 'line' fires before 'close' even when the answer and EOF arrive together; EOF alone means "no".
      rl.once("line", (answer) => {
        resolve(answer);
        rl.close();
      });
      rl.once("close", () => resolve(""));
    }),
  env: process.env,
});
process.exitCode = code;
