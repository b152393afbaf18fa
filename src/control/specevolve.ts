// Which table spec changes apply live and which are refused (pure). Live:
// adding columns at the end with a default and a version bump, retention,
// maxBatchRows, allowNonFinite. Everything that would make records or rows
// already written mean something else is refused with the way to do it.
import type { ClusterSpec, ColumnSpec, TableSpec, TenantSpec } from "../../protocols/tablespec.js";

/** The desired spec as it will be stored (new columns stamped with their version), and what is refused. */
export interface Evolved {
  readonly spec: ClusterSpec;
  /** One sentence per refused change: what it is, why, and what to do instead. */
  readonly refused: readonly string[];
}

const NEW_TABLE = "create a new table (another name) with the spec you want and write to it";

const sameDefault = (a: ColumnSpec, b: ColumnSpec): boolean => a.default === b.default;

/** `next` with the `since` of every column settled, and the refusals of moving from `prev` to it. */
export function evolveTable(tenant: string, prev: TableSpec, next: TableSpec): { spec: TableSpec; refused: string[] } {
  const where = `tenant ${tenant} table ${prev.name}`;
  const refused: string[] = [];
  const refuse = (change: string, fix = NEW_TABLE): void => void refused.push(`${where}: ${change} is refused (${fix})`);
  if (next.shards !== prev.shards) {
    refuse(`changing the shard count from ${prev.shards} to ${next.shards}`, `symbols would route to other buckets and resharding does not exist yet; ${NEW_TABLE}`);
  }
  if (next.version < prev.version) refuse(`lowering the version from ${prev.version} to ${next.version}`, `records and rows of version ${prev.version} exist; keep version ${prev.version} or raise it`);
  if (next.symbolColumn !== prev.symbolColumn) refuse(`renaming the symbol column ${prev.symbolColumn} to ${next.symbolColumn}`);
  if (next.timeColumn !== prev.timeColumn) refuse(`renaming the time column ${prev.timeColumn} to ${next.timeColumn}`);
  const nextNames = new Map(next.columns.map((c, i) => [c.name, i]));
  const prevNames = new Set(prev.columns.map((c) => c.name));
  prev.columns.forEach((p, i) => {
    const at = nextNames.get(p.name);
    const there = next.columns[i];
    if (at === undefined) {
      if (there !== undefined && !prevNames.has(there.name)) refuse(`renaming column ${p.name} to ${there.name}`);
      else refuse(`removing column ${p.name}`);
      return;
    }
    const n = next.columns[at]!;
    if (at !== i) refuse(`moving column ${p.name} from position ${i + 1} to ${at + 1}`, `columns keep their order; add new columns at the end, or ${NEW_TABLE}`);
    if (n.type !== p.type) refuse(`retyping column ${p.name} from ${p.type} to ${n.type}`);
    if (!sameDefault(p, n)) refuse(`changing the default of column ${p.name} from ${JSON.stringify(p.default ?? null)} to ${JSON.stringify(n.default ?? null)}`, `rows already written read as the old default; keep it, or ${NEW_TABLE}`);
  });
  // New names inside the old columns' positions were refused above as a rename or a move.
  const added = next.columns.slice(prev.columns.length).filter((c) => !prevNames.has(c.name));
  for (const c of added) {
    if (c.default === undefined) refuse(`adding column ${c.name} without a default`, `rows written before it need a value: give it "default"`);
  }
  if (added.length > 0 && next.version <= prev.version) {
    refuse(`adding column(s) ${added.map((c) => c.name).join(", ")} without raising the version`, `set version to ${prev.version + 1} so records of either version can be told apart`);
  }
  const columns = next.columns.map((c): ColumnSpec => {
    const p = prev.columns.find((x) => x.name === c.name);
    const since = p ? p.since : next.version;
    const { since: _ignored, ...rest } = c;
    return since === undefined ? rest : { ...rest, since };
  });
  return { spec: { ...next, columns }, refused };
}

/** Same value columns (names and types, in order): a removed and an added table that look like one renamed. */
const sameColumns = (a: TableSpec, b: TableSpec): boolean =>
  a.columns.length === b.columns.length && a.columns.every((c, i) => c.name === b.columns[i]!.name && c.type === b.columns[i]!.type);

export function evolveTenant(prev: TenantSpec | undefined, next: TenantSpec): { spec: TenantSpec; refused: string[] } {
  if (prev === undefined) return { spec: next, refused: [] };
  const refused: string[] = [];
  const old = new Map(prev.tables.map((t) => [t.name, t]));
  const tables = next.tables.map((t) => {
    const p = old.get(t.name);
    if (p === undefined) return t;
    const e = evolveTable(next.name, p, t);
    refused.push(...e.refused);
    return e.spec;
  });
  const names = new Set(next.tables.map((t) => t.name));
  const removed = prev.tables.filter((t) => !names.has(t.name));
  const added = next.tables.filter((t) => !old.has(t.name));
  for (const r of removed) {
    const a = added.find((t) => sameColumns(r, t));
    if (a) {
      refused.push(
        `tenant ${next.name}: renaming table ${r.name} to ${a.name} is refused (a table's WAL, snapshots and ClickHouse table are keyed by its name; add ${a.name} in one apply and remove ${r.name} in a later one)`,
      );
    }
  }
  return { spec: { ...next, tables }, refused };
}

/** Evolves every tenant of `desired` from its current spec. */
export function evolveClusterSpec(current: ReadonlyMap<string, TenantSpec>, desired: ClusterSpec): Evolved {
  const refused: string[] = [];
  const tenants = desired.tenants.map((t) => {
    const e = evolveTenant(current.get(t.name), t);
    refused.push(...e.refused);
    return e.spec;
  });
  return { spec: { tenants }, refused };
}
