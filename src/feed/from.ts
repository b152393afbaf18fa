// Where a subscription starts: "now" (what changes after it starts),
// "snapshot" (the state, or every tick the WAL holds, first), an offset (right
// after a batch sent before), or a time (from the first WAL record holding a
// tick with ts >= the time). On the wire `from` is one string: a time or an
// offset may also be written as JSON, {"time": µs} or {"offset": "<token>"}.
import { QueryError } from "../../protocols/errors.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import { decodeOffset } from "./offset.js";
import type { FeedOffset } from "./offset.js";

export interface FeedStartTime {
  /** Microseconds since the epoch. */
  readonly timeMicros: number;
}

export type FeedFrom = "now" | "snapshot" | FeedOffset | FeedStartTime;

export const isStartTime = (f: FeedFrom): f is FeedStartTime => typeof f === "object" && "timeMicros" in f;

const EXAMPLE = `"now", "snapshot", an offset token, {"offset":"<token>"} or {"time":1700000000000000}`;

/** Reads the subscription field `from` for the feed `fingerprint` over `tables`; refuses (INVALID_ARGUMENT) by name what it cannot read. */
export function parseFrom(text: string, fingerprint: string, tables: readonly TableSpec[]): FeedFrom {
  if (text === "" || text === "now") return "now";
  if (text === "snapshot") return "snapshot";
  if (!text.trimStart().startsWith("{")) return decodeOffset(text, fingerprint, tables);
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch (e) {
    throw new QueryError("INVALID_ARGUMENT", `subscription field from: ${text.slice(0, 60)} is not valid JSON (${(e as Error).message}); pass ${EXAMPLE}`);
  }
  const keys = typeof j === "object" && j !== null && !Array.isArray(j) ? Object.keys(j) : [];
  const o = j as { time?: unknown; offset?: unknown };
  if (keys.length === 1 && keys[0] === "offset" && typeof o.offset === "string") return decodeOffset(o.offset, fingerprint, tables);
  if (keys.length === 1 && keys[0] === "time") {
    if (typeof o.time !== "number" || !Number.isSafeInteger(o.time) || o.time < 0) {
      throw new QueryError("INVALID_ARGUMENT", `subscription field from.time: ${JSON.stringify(o.time)} is not a time; pass microseconds since the epoch as a non-negative integer, e.g. {"time":1700000000000000}`);
    }
    return { timeMicros: o.time };
  }
  throw new QueryError("INVALID_ARGUMENT", `subscription field from: ${text.slice(0, 60)} is neither {"time": µs} nor {"offset": token}; pass ${EXAMPLE}`);
}

/** True when the record's batch holds a tick at or after `timeMicros`. */
export function reaches(ts: ArrayLike<number>, rows: number, timeMicros: number): boolean {
  for (let i = 0; i < rows; i++) if (ts[i]! >= timeMicros) return true;
  return false;
}
