// A small reader of the Prometheus text exposition format (what a node's
// /metrics serves): samples with their labels, comments skipped, label values
// unescaped. Enough for pxctl top; Prometheus itself reads the same text in tests.
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) break;
    const key = text.slice(i, eq).replace(/^[\s,]+/, "").trim();
    let j = eq + 2; // past ="
    let value = "";
    while (j < text.length && text[j] !== '"') {
      if (text[j] === "\\" && j + 1 < text.length) {
        const n = text[j + 1];
        value += n === "n" ? "\n" : n;
        j += 2;
      } else value += text[j++];
    }
    labels[key] = value;
    i = j + 1;
  }
  return labels;
}

export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const m = LINE.exec(line);
    if (m === null) continue;
    const v = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
    out.push({ name: m[1]!, labels: m[2] === undefined ? {} : parseLabels(m[2]), value: v });
  }
  return out;
}

/** The q-quantile of a histogram from (le, cumulative count) pairs, interpolated inside the bucket (as PromQL's histogram_quantile). */
export function bucketQuantile(q: number, buckets: readonly (readonly [number, number])[]): number | undefined {
  const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1e-12, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}
