// The operators, over stitched per-symbol series (see ../load.ts): each returns
// an OutTable whose columns are `fieldsOf(query)`. Pure and synchronous: the
// same code answers hot-only and seam-spanning queries. One file per operator.
export { columnIndex, fieldsOf, neededColumns, selectedColumns } from "./fields.js";
export { aggInputs, bySymbolMap } from "./rows.js";
export { rangeOp } from "./range.js";
export { byOp, fastByOp, lastByRows } from "./by.js";
export { asofMatch, asofOp } from "./asof.js";
export { windowJoinOp } from "./windowjoin.js";
export { rollingOp } from "./rolling.js";
export { MAX_FILL_BUCKETS, barAggregates, barsOp } from "./bars.js";
export { groupByOp } from "./groupby.js";
export { udfGroupTable, udfRangeOp, udfUses } from "./udf.js";
export type { UdfFold, UdfRunner, UdfSessions } from "./udf.js";
