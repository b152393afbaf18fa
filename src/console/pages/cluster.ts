// The cluster page: GET /v1/cluster every 2 s (what `pxctl status` shows, plus
// this node's hosted shards with P and H, its ingest rate and the WAL size).
import { getJson } from "../api.js";
import { fmtBytes, fmtMicros, fmtNumber, h } from "../dom.js";

interface NodeView { id: string; address: string; version: string; state: string; capacity: number; heartbeatAgeMs: number; shards: number; clickhouse: string }
interface ShardView { shard: string; tenant: string; table: string; bucket: number; owner: string; state: string; term: number; appliedLsn?: number; persistedLsn?: number; tPersistedMicros?: number; lagRecords?: number; rows?: number }
interface LocalShard { tenant: string; table: string; bucket: number; state: string; appliedLsn: number; persistedLsn: number; horizonMicros: number; newestTickMicros: number; lagRecords: number; rows: number; bytes: number; sinkState: string; lagMs: number; error?: string }
interface Wal { tenant: string; bytes: number; records: number; maxBytes: number; lastLsn: number }
export interface ClusterAnswer {
  atMs: number;
  node: { id: string; ingest: Record<string, number>; ingestRowsPerS: number | null; wal: Wal[]; shards: LocalShard[] };
  leader?: { holder: string; term: number } | null;
  nodes?: NodeView[];
  shards?: ShardView[];
  status: unknown;
  statusError: string | null;
}

const POLL_MS = 2000;
const GOOD = /^(running|live|running\.live|ready|serving)/;
const BAD = /(failed|down|stale|unassigned)/;
const tone = (state: string): string => (BAD.test(state) ? "bad" : GOOD.test(state) ? "ok" : "mid");
const n = (x: number | undefined | null): string => (x === undefined || x === null ? "–" : fmtNumber(x));
const when = (us: number | undefined): string => (!us ? "–" : fmtMicros(us).slice(0, 23));

function kpi(k: string, v: string, id?: string): HTMLElement {
  return h("div.card.kpi", id ? { id } : {}, h("div.k", {}, k), h("div.v", {}, v));
}

function table(head: readonly string[], rows: readonly (readonly (string | HTMLElement)[])[], id: string): HTMLElement {
  return h(`table.plain#${id}`, {}, h("thead", {}, h("tr", {}, ...head.map((x) => h("th", {}, x)))), h("tbody", {}, ...rows.map((r) => h("tr", {}, ...r.map((c, i) => h(`td${i === 0 ? ".l" : ""}`, {}, c))))));
}

function render(a: ClusterAnswer): Node[] {
  const status = a.status as { leader?: { holder: string; term: number }; nodes: NodeView[]; shards: ShardView[] } | null;
  const key = (s: { tenant: string; table: string; bucket: number }): string => `${s.tenant}\u0000${s.table}\u0000${s.bucket}`;
  const local = new Map(a.node.shards.map((s) => [key(s), s]));
  const shards = status?.shards ?? [];
  const byState = new Map<string, number>();
  for (const s of shards) byState.set(s.state, (byState.get(s.state) ?? 0) + 1);
  const walBytes = a.node.wal.reduce((x, w) => x + w.bytes, 0);
  const out: Node[] = [
    h(
      "div.kpis",
      {},
      kpi("this node", a.node.id, "kpi-node"),
      kpi("ingest rows/s", a.node.ingestRowsPerS === null ? "…" : fmtNumber(Math.round(a.node.ingestRowsPerS)), "kpi-rate"),
      kpi("rows accepted", n(a.node.ingest.acceptedRows)),
      kpi("WAL size", fmtBytes(walBytes), "kpi-wal"),
      kpi("leader", status?.leader ? `${status.leader.holder} (term ${status.leader.term})` : "none (single node)"),
      kpi("shards", String(shards.length), "kpi-shards"),
    ),
  ];
  if (a.statusError) out.push(h("div.error", {}, `control plane: ${a.statusError}`));
  out.push(h("div.badges#shard-states", {}, ...[...byState].sort().map(([s, c]) => h(`span.badge.${tone(s)}`, { "data-state": s }, s, h("b", {}, String(c))))));
  out.push(h("h2", {}, "Nodes"));
  out.push(table(["node", "address", "state", "heartbeat age", "shards", "capacity", "ClickHouse", "version"], (status?.nodes ?? []).map((x) => [x.id, x.address, h(`span.badge.${tone(x.state)}`, {}, x.state), `${(x.heartbeatAgeMs / 1000).toFixed(1)} s`, String(x.shards), String(x.capacity), x.clickhouse, x.version]), "nodes"));
  out.push(h("h2", {}, "Shards"), h("div.note", {}, "P: the persisted LSN (every record up to it is in ClickHouse) and T_persisted its newest tick; H: the eviction horizon (RAM holds every row with ts ≥ H; shown for shards this node hosts); lag: records applied but not yet persisted."));
  out.push(
    table(
      ["shard", "owner", "state", "applied LSN", "P (persisted LSN)", "T_persisted", "H (horizon)", "lag (records)", "sink lag", "rows"],
      shards.map((s) => {
        const l = local.get(key(s));
        return [s.shard, s.owner || "–", h(`span.badge.${tone(s.state)}`, {}, s.state), n(s.appliedLsn), n(s.persistedLsn), when(s.tPersistedMicros), l ? (l.horizonMicros ? when(l.horizonMicros) : "0 (nothing evicted)") : "–", n(s.lagRecords), l ? `${l.sinkState}${l.lagMs ? ` ${(l.lagMs / 1000).toFixed(1)} s` : ""}` : "–", n(s.rows)];
      }),
      "shards",
    ),
  );
  out.push(h("h2", {}, "WAL streams"));
  out.push(table(["tenant", "size", "records", "limit", "last LSN"], a.node.wal.map((w) => [w.tenant, fmtBytes(w.bytes), n(w.records), w.maxBytes < 0 ? "none" : fmtBytes(w.maxBytes), n(w.lastLsn)]), "wal"));
  return out;
}

export function clusterPage(root: HTMLElement): () => void {
  const body = h("div#cluster");
  const stamp = h("span.note#cluster-stamp", {}, "loading…");
  root.replaceChildren(h("div.row", {}, h("h2", { style: "margin:0" }, "Cluster"), h("span.spacer"), stamp), body);
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const tick = async (): Promise<void> => {
    try {
      const a = await getJson<ClusterAnswer>("/v1/cluster");
      if (stopped) return;
      body.replaceChildren(...render({ ...a, status: a.status ?? null }));
      stamp.textContent = `as of ${new Date(a.atMs).toISOString().slice(11, 19)} UTC · refreshes every 2 s`;
    } catch (e) {
      if (!stopped) body.replaceChildren(h("div.error", {}, (e as Error).message));
    }
    if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
