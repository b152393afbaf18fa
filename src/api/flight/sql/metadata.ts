// Flight SQL catalog browsing (GetCatalogs, GetDbSchemas, GetTables,
// GetTableTypes) over the token's tenant, with the result schemas the
// specification fixes. The tenant is the db_schema and there is no catalog:
// SQL already names a table as `<tenant>.<table>` (schema-qualified), each
// tenant is its own ClickHouse database (a schema to most tools), and a token
// sees exactly one tenant, so tools show one schema holding its tables.
import { Binary, Field, RecordBatch, Schema, Struct, Utf8, makeData, vectorFromArray } from "apache-arrow";
import type { Data, DataType } from "apache-arrow";
import type { CommandGetDbSchemas, CommandGetTables } from "../../../../protocols/gen/arrow/flight/protocol/sql/FlightSql_pb.js";

export const TABLE_TYPE = "TABLE";

const utf8 = (name: string, nullable: boolean) => new Field(name, new Utf8(), nullable);

export const CATALOGS_SCHEMA = new Schema([utf8("catalog_name", false)]);
export const DB_SCHEMAS_SCHEMA = new Schema([utf8("catalog_name", true), utf8("db_schema_name", false)]);
export const TABLE_TYPES_SCHEMA = new Schema([utf8("table_type", false)]);
const TABLES_FIELDS = [utf8("catalog_name", true), utf8("db_schema_name", true), utf8("table_name", false), utf8("table_type", false)];
export const tablesSchema = (includeSchema: boolean): Schema =>
  new Schema(includeSchema ? [...TABLES_FIELDS, new Field("table_schema", new Binary(), false)] : TABLES_FIELDS);

/** A SQL LIKE pattern (% any run, _ one character, \ escapes) as a whole-string matcher; absent matches all. */
export function likeMatcher(pattern: string | undefined): (s: string) => boolean {
  if (pattern === undefined) return () => true;
  let re = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "\\" && i + 1 < pattern.length) re += pattern[++i]!.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    else if (c === "%") re += "[\\s\\S]*";
    else if (c === "_") re += "[\\s\\S]";
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }
  const compiled = new RegExp(`^${re}$`);
  return (s) => compiled.test(s);
}

function batchOf(schema: Schema, columns: readonly (readonly (string | null | Uint8Array)[])[]): RecordBatch {
  const length = columns[0]?.length ?? 0;
  const children: Data[] = schema.fields.map((f, j) => vectorFromArray([...columns[j]!], f.type as DataType).data[0]!);
  return new RecordBatch(schema, makeData({ type: new Struct(schema.fields), length, nullCount: 0, children }));
}

/** No catalogs: tables are named `<tenant>.<table>` at most. */
export const catalogsBatch = (): RecordBatch => batchOf(CATALOGS_SCHEMA, [[]]);

/** A catalog filter matches only "no catalog": absent or empty. */
const noCatalog = (catalog: string | undefined): boolean => catalog === undefined || catalog === "";

export function dbSchemasBatch(tenant: string, r: CommandGetDbSchemas): RecordBatch {
  const rows = noCatalog(r.catalog) && likeMatcher(r.dbSchemaFilterPattern)(tenant) ? [tenant] : [];
  return batchOf(DB_SCHEMAS_SCHEMA, [rows.map(() => null), rows]);
}

export const tableTypesBatch = (): RecordBatch => batchOf(TABLE_TYPES_SCHEMA, [[TABLE_TYPE]]);

/** The tables GetTables lists: the tenant's, filtered; `schemaOf` gives each one's serialized Arrow schema when asked. */
export function tableNames(tenant: string, tables: readonly string[], r: CommandGetTables): string[] {
  const typeOk = r.tableTypes.length === 0 || r.tableTypes.includes(TABLE_TYPE);
  if (!typeOk || !noCatalog(r.catalog) || !likeMatcher(r.dbSchemaFilterPattern)(tenant)) return [];
  const nameOk = likeMatcher(r.tableNameFilterPattern);
  return tables.filter(nameOk).sort();
}

export function tablesBatch(tenant: string, names: readonly string[], schemas: readonly Uint8Array[] | undefined): RecordBatch {
  const columns: (string | null | Uint8Array)[][] = [names.map(() => null), names.map(() => tenant), [...names], names.map(() => TABLE_TYPE)];
  if (schemas) columns.push([...schemas]);
  return batchOf(tablesSchema(schemas !== undefined), columns);
}
