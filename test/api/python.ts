// Runs the pyarrow.flight clients (test/api/flight_client.py, and
// flightsql_client.py for Flight SQL) in the project's venv and returns their
// JSON output.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

export const PYTHON = fileURLToPath(new URL("../../.venv/bin/python", import.meta.url));
const SCRIPT = fileURLToPath(new URL("./flight_client.py", import.meta.url));

export const havePython = (): boolean => existsSync(PYTHON);

export type FlightOut = Record<string, unknown> & { error?: string; message?: string };

export function pyFlight(command: string, args: Record<string, string | number | boolean | undefined>, timeoutMs = 60_000): Promise<FlightOut> {
  return runPython(SCRIPT, command, args, timeoutMs);
}

/** Runs `script` (a path) with `command` and --key value arguments; resolves with the JSON it printed last. */
export function runPython(script: string, command: string, args: Record<string, string | number | boolean | undefined>, timeoutMs = 60_000): Promise<FlightOut> {
  const name = script.split("/").pop();
  const argv = [script, command];
  for (const [k, v] of Object.entries(args)) {
    if (v === undefined || v === false) continue;
    argv.push(`--${k}`);
    if (v !== true) argv.push(String(v));
  }
  return new Promise((resolve, reject) => {
    execFile(PYTHON, argv, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`${name} ${command} failed: ${err.message}\n${stderr}`));
      try {
        resolve(JSON.parse(stdout.trim().split("\n").at(-1)!) as FlightOut);
      } catch {
        reject(new Error(`${name} ${command} printed no JSON:\n${stdout}\n${stderr}`));
      }
    });
  });
}
