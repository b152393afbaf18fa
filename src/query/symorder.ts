// The symbols of a table's hot shards in name order. Last-by and the range
// fast path walk every symbol per query; sorting ~1,000 names each time costs
// more than the walk. A shard's order is cached until it learns a symbol
// (symbols are only ever added), and the shards' lists are merged per query.
import { bucketOf } from "../../protocols/routing.js";
import type { TableSpec } from "../../protocols/tablespec.js";
import type { HotTable } from "../hotset/index.js";
import type { HotShard } from "./source.js";

/** The order of symbol names in every answer (JavaScript string order). */
export const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

interface Order {
  readonly count: number;
  readonly names: readonly string[];
  readonly ids: Int32Array;
}

const cache = new WeakMap<HotTable, Order>();

function orderOf(table: HotTable): Order {
  const hit = cache.get(table);
  if (hit !== undefined && hit.count === table.symbolCount) return hit;
  const all = table.symbols();
  const ids = Int32Array.from(all.keys()).sort((a, b) => compareStrings(all[a]!, all[b]!));
  const o = { count: all.length, names: Array.from(ids, (id) => all[id]!), ids };
  cache.set(table, o);
  return o;
}

export interface SymbolRef {
  readonly name: string;
  /** Index into the shards list. */
  readonly shard: number;
  readonly id: number;
}

interface Merged {
  readonly tables: readonly HotTable[];
  readonly counts: readonly number[];
  readonly refs: readonly SymbolRef[];
}

/** The last merge per first shard's table: a last-by over the same shards (no symbol learnt since) reuses it. */
const merges = new WeakMap<HotTable, Merged>();

/** Every symbol of `shards` in name order (a symbol lives in one shard only). Shared between calls: do not change it. */
export function symbolsInOrder(shards: readonly HotShard[]): readonly SymbolRef[] {
  const first = shards[0]?.table;
  const hit = first === undefined ? undefined : merges.get(first);
  if (hit !== undefined && hit.tables.length === shards.length && shards.every((s, k) => s.table === hit.tables[k] && s.table.symbolCount === hit.counts[k])) return hit.refs;
  const refs = mergeOrders(shards);
  if (first !== undefined) merges.set(first, { tables: shards.map((s) => s.table), counts: shards.map((s) => s.table.symbolCount), refs });
  return refs;
}

function mergeOrders(shards: readonly HotShard[]): SymbolRef[] {
  const orders = shards.map((s) => orderOf(s.table));
  const pos = new Int32Array(orders.length);
  const out: SymbolRef[] = [];
  for (;;) {
    let best = -1;
    for (let k = 0; k < orders.length; k++) {
      if (pos[k]! < orders[k]!.count && (best < 0 || compareStrings(orders[k]!.names[pos[k]!]!, orders[best]!.names[pos[best]!]!) < 0)) best = k;
    }
    if (best < 0) return out;
    const o = orders[best]!;
    const i = pos[best]!++;
    out.push({ name: o.names[i]!, shard: best, id: o.ids[i]! });
  }
}

/** The listed symbols that `shards` hold, in name order. */
export function symbolsListed(symbols: readonly string[], spec: TableSpec, shards: readonly HotShard[]): SymbolRef[] {
  const out: SymbolRef[] = [];
  for (const name of [...symbols].sort(compareStrings)) {
    const shard = shards.findIndex((s) => s.bucket === bucketOf(name, spec.shards));
    const id = shard < 0 ? undefined : shards[shard]!.table.lookup(name);
    if (id !== undefined) out.push({ name, shard, id });
  }
  return out;
}
