// Reads the import graph of the production tree (src/, actors/, protocols/;
// generated code left out) as text and judges it against the house rules.
// Used by layers.test.ts; kept apart so the rules read in one place.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

export type Layer = "protocols" | "core" | "machines" | "faces" | "wiring" | "entry";

/** Which folders make each layer (paths relative to the repository root). */
export const LAYERS: Readonly<Record<Layer, readonly string[]>> = {
  protocols: ["protocols/"],
  core: ["src/wal/", "src/hotset/", "src/query/", "src/sql/", "src/codec/", "src/ingest/", "src/clickhouse/", "src/snapshot/", "src/auth/", "src/sink/", "src/shard/", "src/control/", "src/feed/", "src/catalog.ts", "src/config/", "src/quota/", "src/udf/"],
  machines: ["actors/"],
  faces: ["src/api/", "src/client/"],
  wiring: ["src/node/", "src/runtime/", "src/demo/"],
  // src/console: the web console, a browser program (bundled by vite, imports nothing of the node).
  entry: ["src/main.ts", "src/cli/", "src/console/"],
};

/** What each layer may import (itself included). */
const MAY_IMPORT: Readonly<Record<Layer, readonly Layer[]>> = {
  protocols: ["protocols"],
  core: ["protocols", "core"],
  machines: ["protocols", "core", "machines"],
  faces: ["protocols", "core", "faces"],
  wiring: ["protocols", "core", "machines", "faces", "wiring"],
  entry: ["protocols", "core", "machines", "faces", "wiring", "entry"],
};

export function layerOf(file: string): Layer | undefined {
  for (const [layer, prefixes] of Object.entries(LAYERS) as [Layer, readonly string[]][]) {
    if (prefixes.some((p) => (p.endsWith("/") ? file.startsWith(p) : file === p))) return layer;
  }
  return undefined;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(ROOT, dir))) {
    const rel = `${dir}/${name}`;
    if (rel === "protocols/gen" || rel === "protocols/proto") continue;
    if (statSync(join(ROOT, rel)).isDirectory()) out.push(...sources(rel));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(rel);
  }
  return out;
}

const SPECIFIER = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+"([^"]+)"|import\(\s*"([^"]+)"\s*\)/g;

/** file -> the project files it imports (relative specifiers only; generated code left out). */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of ["src", "actors", "protocols"].flatMap(sources)) {
    const text = readFileSync(join(ROOT, file), "utf8");
    const targets: string[] = [];
    for (const m of text.matchAll(SPECIFIER)) {
      const spec = m[1] ?? m[2];
      if (!spec?.startsWith(".")) continue;
      const abs = resolve(ROOT, dirname(file), spec.replace(/\.js$/, ".ts"));
      const rel = relative(ROOT, existsSync(abs) ? abs : join(abs, "index.ts"));
      if (rel.startsWith("protocols/gen/")) continue;
      targets.push(rel);
    }
    graph.set(file, targets);
  }
  return graph;
}

export function layerViolations(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    const a = layerOf(from);
    if (!a) continue;
    for (const to of tos) {
      const b = layerOf(to);
      if (b && !MAY_IMPORT[a].includes(b)) out.push(`${from} (${a}) imports ${to} (${b})`);
    }
  }
  return out;
}

/** Imports of a file inside a folder (below protocols/) that has an index.ts, from outside that folder, not through the index. */
export function indexBypasses(graph: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  for (const [from, tos] of graph) {
    for (const to of tos) {
      const folder = dirname(to);
      // protocols/ is the ground floor: independent schema modules, its index a convenience.
      if (folder === "protocols") continue;
      if (to.endsWith("/index.ts") || !existsSync(join(ROOT, folder, "index.ts"))) continue;
      if (from.startsWith(`${folder}/`)) continue;
      out.push(`${from} imports ${to} instead of ${folder}/index.ts`);
    }
  }
  return out;
}

/** Strongly connected components of more than one file (Tarjan), each as a sorted list. */
export function importLoops(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) loops.push(scc.sort());
    }
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return loops;
}
