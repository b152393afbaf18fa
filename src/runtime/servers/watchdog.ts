// A watchdog per server that `proxist up` starts: a detached `sh` that polls the
// launcher's PID and stops the server (SIGTERM, then SIGKILL) once the launcher
// is gone, so a SIGKILLed launcher leaves no orphaned nats-server or
// clickhouse-server behind. It lives in its own process group (a Ctrl-C on the
// terminal reaches only the launcher, which stops everything itself).
import { spawn } from "node:child_process";

const SCRIPT = `
parent="$1"; child="$2"
while kill -0 "$parent" 2>/dev/null; do
  kill -0 "$child" 2>/dev/null || exit 0
  sleep 1
done
kill -TERM "$child" 2>/dev/null || exit 0
i=0
while kill -0 "$child" 2>/dev/null && [ $i -lt 15 ]; do sleep 1; i=$((i+1)); done
kill -KILL "$child" 2>/dev/null
exit 0
`;

/** Starts the watchdog; returns its PID (it exits on its own once the server is gone). */
export function watchParent(childPid: number, parentPid: number = process.pid): number {
  const w = spawn("sh", ["-c", SCRIPT, "proxist-watchdog", String(parentPid), String(childPid)], { detached: true, stdio: "ignore" });
  w.unref();
  return w.pid ?? -1;
}
