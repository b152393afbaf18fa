// Time in SQL text: timestamps ('2024-01-02T14:30:00Z', '2024-01-02', or
// integer microseconds) and durations ('5m', '500ms', INTERVAL '5 minutes',
// 1m) become the query model's microseconds and duration strings.
import { isoMicros } from "../../protocols/isotime.js";
import { MAX_QUERY_TS, MICROS_PER_DAY, parseDuration } from "../../protocols/query.js";
import { malformed } from "./refuse.js";

/** Microseconds since the epoch of an ISO date or date-time; no zone means UTC. */
export function isoTimestamp(text: string, where: string): number {
  const micros = isoMicros(text);
  if (micros === undefined) {
    throw malformed(`${where}: '${text}' is not a timestamp`, "write an ISO date-time in UTC such as '2024-01-02T14:30:00Z' (fractions down to microseconds), a date '2024-01-02', or integer microseconds since the epoch");
  }
  return inRange(micros, text, where);
}

function inRange(micros: number, text: string, where: string): number {
  if (!Number.isSafeInteger(micros) || micros < 0 || micros > MAX_QUERY_TS) {
    throw malformed(`${where}: ${text} is outside 1970-01-01 .. 2200-01-01`, "timestamps are microseconds since the Unix epoch (UTC); a value in seconds or milliseconds must be multiplied first");
  }
  return micros;
}

/** A timestamp from a literal: a string (ISO) or a number (microseconds). */
export function timestampOf(v: string | number, where: string): number {
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw malformed(`${where}: ${v} is not an integer`, "give timestamps as integer microseconds or as ISO strings");
    return inRange(v, String(v), where);
  }
  if (/^\d+$/.test(v.trim())) return inRange(Number(v.trim()), v, where);
  return isoTimestamp(v, where);
}

const UNIT_WORDS: Record<string, string> = {
  us: "us", µs: "us", microsecond: "us", microseconds: "us",
  ms: "ms", millisecond: "ms", milliseconds: "ms",
  s: "s", sec: "s", secs: "s", second: "s", seconds: "s",
  m: "m", min: "m", mins: "m", minute: "m", minutes: "m",
  h: "h", hour: "h", hours: "h",
  d: "d", day: "d", days: "d",
};

/** A duration as the query model writes it ("5m", "500ms") or integer microseconds. */
export function durationOf(text: string, where: string): string | number {
  const t = text.trim();
  if (/^\d+$/.test(t)) return Number(t);
  const m = /^(\d+)\s*([A-Za-zµ]+)$/.exec(t);
  // "M" is a month in QuestDB; months have no fixed length, so they are refused rather than read as minutes.
  const unit = m === null || m[2] === "M" ? undefined : UNIT_WORDS[m[2]!.toLowerCase()];
  if (m === null || unit === undefined) {
    throw malformed(`${where}: '${text}' is not a duration`, "write a number with a unit: us, ms, s, m, h or d (e.g. '5m', '500ms', INTERVAL '5 minutes'), or integer microseconds");
  }
  return `${m[1]}${unit}`;
}

/** A duration in microseconds (for now() arithmetic). */
export const durationMicros = (d: string | number, where: string): number => parseDuration(where, d, 0, 366 * MICROS_PER_DAY);
