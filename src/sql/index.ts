// SQL front end (issue 18): one SQL statement -> the JSON query model of
// protocols/query.ts, run by the same engine as every other query. Pure: no IO.
export { compileSql } from "./compile.js";
export type { CompiledSql, SqlFunctions, SqlTable, SqlTables } from "./compile.js";
export { looksLikeSql } from "./detect.js";
