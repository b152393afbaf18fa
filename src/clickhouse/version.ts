// Server version and the features Proxist may use on it. Tests and CI run
// 18.16 (Debian); docker compose runs a current release. Code asks for a
// capability, never compares version numbers itself.
import type { ClickhouseHttp } from "./http.js";

export interface ClickhouseVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** As the server reported it, e.g. `18.16.1` or `24.3.2.23`. */
  readonly text: string;
}

/**
 * Features newer than 18.16, with the release that brought them (from the
 * ClickHouse changelogs). Absent ones need a fallback in the caller.
 */
export interface ClickhouseCapabilities {
  /** `ASOF [LEFT] JOIN ... ON eq AND a.t >= b.t`: 19.14 (19.5 had only the `USING` form). */
  readonly asofJoin: boolean;
  /** `{name:Type}` query parameters sent as `param_name` URL parameters: 19.11. */
  readonly queryParameters: boolean;
  /**
   * `insert_deduplication_token` setting: 22.2. On a non-replicated MergeTree it
   * only deduplicates when the table sets `non_replicated_deduplication_window`.
   */
  readonly insertDeduplicationToken: boolean;
  /** `X-ClickHouse-Summary` response header (written rows/bytes of an INSERT): 19.8. */
  readonly summaryHeader: boolean;
  /**
   * The `async_insert` setting exists: 21.11. Releases from 26.2 on turn it on
   * by default, which merges INSERTs into shared parts: Proxist's INSERTs must
   * send `async_insert=0` there (18.16 rejects the unknown setting).
   */
  readonly asyncInsertSetting: boolean;
}

export interface ClickhouseServerInfo {
  readonly version: ClickhouseVersion;
  readonly capabilities: ClickhouseCapabilities;
}

/** Parses `18.16.1`, `24.3.2.23`, `24.8.1.2684 (official build)`. Throws on anything else. */
export function parseClickhouseVersion(text: string): ClickhouseVersion {
  const m = /^\s*v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (m === null) throw new Error(`ClickHouse version "${text}" is not major.minor[.patch]; is this a ClickHouse server?`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: m[3] === undefined ? 0 : Number(m[3]), text: text.trim() };
}

/** True when `v` is at least `major.minor`. */
export function versionAtLeast(v: Pick<ClickhouseVersion, "major" | "minor">, major: number, minor: number): boolean {
  return v.major > major || (v.major === major && v.minor >= minor);
}

export function capabilitiesOf(v: Pick<ClickhouseVersion, "major" | "minor">): ClickhouseCapabilities {
  return {
    asofJoin: versionAtLeast(v, 19, 14),
    queryParameters: versionAtLeast(v, 19, 11),
    insertDeduplicationToken: versionAtLeast(v, 22, 2),
    summaryHeader: versionAtLeast(v, 19, 8),
    asyncInsertSetting: versionAtLeast(v, 21, 11),
  };
}

/** Asks the server (`SELECT version()`) and derives its capabilities. */
export async function detectServer(client: ClickhouseHttp): Promise<ClickhouseServerInfo> {
  const text = (await client.query("SELECT version() FORMAT TabSeparated")).trim();
  const version = parseClickhouseVersion(text);
  return { version, capabilities: capabilitiesOf(version) };
}

/**
 * Settings that make an INSERT synchronous and one part per partition on this
 * server: `async_insert=0` where the setting exists, nothing on 18.16.
 */
export function syncInsertSettings(c: ClickhouseCapabilities): Readonly<Record<string, number>> {
  return c.asyncInsertSetting ? { async_insert: 0 } : {};
}
