// Hot set: the in-memory, per-shard column store (kdb+ "RDB" role). Pure: no IO.
// The shard actor drives one HotTable per (table, bucket) with `apply` during
// replay and live ingest, `evict` after the sink persists, and snapshots via
// `exportColumns` / `HotTable.fromColumns`.
export { HotSetError } from "./errors.js";
export { compareSymbols } from "./export.js";
export type { SortedRows } from "./export.js";
export type { Series } from "./series.js";
export { lastHotBefore } from "./lastrow.js";
export { before } from "./roworder.js";
export { HotTable } from "./store.js";
export type { EvictResult, SeriesEntry } from "./store.js";
export { SymbolDictionary } from "./symbols.js";
export { DEFAULT_HOTSET_OPTIONS } from "./types.js";
export type { ColumnSlice, HotSetOptions, HotTableColumns, SeamRow, SeriesColumns } from "./types.js";
