// JetStream's fsync setting for the servers Proxist launches. nats-server
// acknowledges a stored message once it is written to the OS (page cache), and
// flushes to disk every 2 minutes by default: a killed server process loses
// nothing, a power loss or OS crash may lose the last acknowledged records of
// a single server. nats-server 2.10+ takes `sync_interval` (a duration, or
// `always`: fsync before each ack); 2.9 (Debian's) does not know the field.
import { execFileSync } from "node:child_process";

export type NatsVersion = readonly [number, number, number];

/** "nats-server: v2.9.10" -> [2, 9, 10]; undefined when the output is not a version. */
export function parseNatsVersion(text: string): NatsVersion | undefined {
  const m = /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m === null ? undefined : [Number(m[1]), Number(m[2]), Number(m[3])];
}

export function natsServerVersion(bin: string): NatsVersion | undefined {
  try {
    return parseNatsVersion(execFileSync(bin, ["--version"], { encoding: "utf8", timeout: 10_000 }));
  } catch {
    return undefined;
  }
}

const SETTING = /^(always|[1-9]\d*(ms|s|m|h))$/;

/**
 * The `sync_interval` line of the jetstream block for `setting` (PX_NATS_SYNC:
 * "always" or a duration such as "1s"; undefined: the server's default, no
 * line). Throws, naming the setting and the fix, for a malformed value or a
 * server too old to honour it (silently ignoring a durability request would
 * promise what is not done).
 */
export function syncIntervalLine(setting: string | undefined, version: NatsVersion | undefined): string | undefined {
  if (setting === undefined || setting === "") return undefined;
  if (!SETTING.test(setting)) throw new Error(`PX_NATS_SYNC=${setting}: use "always" (fsync before every acknowledgement) or a duration such as 500ms, 1s, 2m`);
  const [major, minor] = version ?? [0, 0, 0];
  if (major < 2 || (major === 2 && minor < 10)) {
    const found = version === undefined ? "an unknown version" : version.join(".");
    throw new Error(`PX_NATS_SYNC=${setting} needs nats-server 2.10 or later (sync_interval), found ${found}; install a newer nats-server, or unset PX_NATS_SYNC and rely on replication (R3) for power-loss durability`);
  }
  return `  sync_interval: ${setting}`;
}
