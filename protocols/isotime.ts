// ISO 8601 date-times to integer microseconds, keeping the microsecond digits
// (Date.parse stops at milliseconds). A text without a zone is UTC. Used by
// every text edge that reads timestamps (SQL literals, HTTP ingest bodies).

const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i;

/** Microseconds since the epoch, or undefined when `text` is not an ISO date or date-time. */
export function isoMicros(text: string): number | undefined {
  const m = ISO.exec(text.trim());
  if (m === null) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const ms = Date.UTC(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  if (!Number.isFinite(ms) || Number(mo) > 12 || Number(d) > 31 || Number(h ?? 0) > 23 || Number(mi ?? 0) > 59 || Number(s ?? 0) > 60) return undefined;
  let offsetMin = 0;
  if (zone !== undefined && zone.toUpperCase() !== "Z") {
    const z = /^([+-])(\d{2}):?(\d{2})$/.exec(zone)!;
    offsetMin = (z[1] === "-" ? -1 : 1) * (Number(z[2]) * 60 + Number(z[3]));
  }
  return (ms - offsetMin * 60_000) * 1000 + Number((frac ?? "").padEnd(6, "0").slice(0, 6));
}
