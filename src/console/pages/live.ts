// The live view: a last-by board (one row per symbol; a cell that changed
// flashes green or red) and a ticking chart of the symbol picked on the board.
// HTTP has no feeds yet, so both poll POST /v1/query every second; the chart
// starts from the node's downsampled history (POST /v1/chart) and then adds
// only the ticks newer than its last point.
import { LineSeries } from "lightweight-charts";
import type { IChartApi, ISeriesApi, UTCTimestamp } from "lightweight-charts";
import { chart as chartCall, query, sqlString } from "../api.js";
import type { Column, QueryResult } from "../api.js";
import { chartTime, newChart } from "../chart.js";
import { h } from "../dom.js";
import { cellText } from "../table.js";

const POLL_MS = 1000;
const HISTORY_US = 5 * 60 * 1_000_000;
/** Ticks asked per poll: a faster symbol shows its latest ones (the chart is a view, not a record). */
const PER_POLL = 2000;
const QUANTITY = /^(size|qty|quantity|volume|count)$/i;

export function livePage(root: HTMLElement): () => void {
  const tableInput = h("input#live-table", { value: sessionStorage.getItem("proxist.liveTable") ?? "trades", size: 14 });
  const status = h("span.note#live-status", {}, "starting…");
  const error = h("div#live-error");
  const board = h("table.board#board");
  const chartEl = h("div.chart#live-chart");
  const chartTitle = h("h2#live-title", {}, "Pick a symbol on the board");
  root.replaceChildren(
    h("div.row", {}, h("label", {}, "Table "), tableInput, status, h("span.spacer"), h("span.note", {}, "Polling every second: HTTP has no feeds yet (gRPC ProxistFeeds/Subscribe streams them).")),
    error,
    h("div.grid2", {}, h("div.card", { style: "overflow:auto" }, h("h2", {}, "Last by symbol"), board), h("div.card", { style: "display:flex;flex-direction:column" }, chartTitle, h("div", { style: "flex:1;min-height:260px" }, chartEl))),
  );

  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let prev = new Map<string, readonly unknown[]>();
  let selected: string | undefined;
  let chart: IChartApi | undefined;
  let line: ISeriesApi<"Line"> | undefined;
  let lastUs = 0;
  let lastChartTime = 0;
  let valueColumn: string | undefined;
  let loadingHistory = false;

  const table = (): string => tableInput.value.trim() || "trades";
  tableInput.addEventListener("change", () => {
    sessionStorage.setItem("proxist.liveTable", table());
    prev = new Map();
    select(undefined);
  });

  function select(sym: string | undefined): void {
    selected = sym;
    chart?.remove();
    chart = undefined;
    line = undefined;
    lastUs = 0;
    lastChartTime = 0;
    for (const tr of board.querySelectorAll("tr[data-sym]")) tr.classList.toggle("sel", (tr as HTMLElement).dataset.sym === sym);
  }

  function renderBoard(r: QueryResult): void {
    const cols = r.columns;
    const timeAt = cols.findIndex((c) => c.type === "timestamp_us");
    const numeric = cols.map((c, j) => ({ c, j })).filter(({ c, j }) => j !== timeAt && j !== 0 && !/utf8|dictionary|bool/i.test(c.type));
    valueColumn = (numeric.find(({ c }) => !QUANTITY.test(c.name)) ?? numeric[0])?.c.name;
    const head = h("tr", {}, ...cols.map((c) => h("th", {}, c.name)));
    const rows = [...r.rows].sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    const next = new Map<string, readonly unknown[]>();
    const trs = rows.map((row) => {
      const sym = String(row[0]);
      next.set(sym, row);
      const before = prev.get(sym);
      const tr = h("tr", { "data-sym": sym, onclick: () => select(sym) }, ...cols.map((c: Column, j) => {
        const td = h("td", {}, cellText(c, row[j]));
        const was = before?.[j];
        if (before !== undefined && was !== row[j] && j !== timeAt) {
          td.className = typeof row[j] === "number" && typeof was === "number" && row[j] < was ? "down" : "up";
        }
        return td;
      }));
      if (sym === selected) tr.classList.add("sel");
      if (before !== undefined && before[timeAt] !== row[timeAt]) tr.dataset.updated = String(row[timeAt]);
      return tr;
    });
    board.replaceChildren(h("thead", {}, head), h("tbody", {}, ...trs));
    prev = next;
    if (selected === undefined && rows.length > 0) select(String(rows[0]![0]));
  }

  async function pollChart(r: QueryResult): Promise<void> {
    if (selected === undefined || valueColumn === undefined) return;
    const sym = selected;
    const col = valueColumn;
    const timeAt = r.columns.findIndex((c) => c.type === "timestamp_us");
    const latest = r.rows.find((row) => String(row[0]) === sym)?.[timeAt];
    if (typeof latest !== "number") return;
    // The table's own symbol and time columns (results start with them).
    const symCol = r.columns[0]!.name;
    const ts = r.columns[timeAt]!.name;
    const where = `FROM ${table()} WHERE ${symCol} IN (${sqlString(sym)})`;
    if (!chart) {
      if (loadingHistory) return;
      loadingHistory = true;
      try {
        chartTitle.textContent = `${sym} ${col} (last 5 min of its ticks, then live)`;
        const a = await chartCall(`SELECT ${symCol}, ${ts}, ${col} ${where} AND ${ts} >= ${latest - HISTORY_US} AND ${ts} <= ${latest}`, 1500);
        if (selected !== sym) return;
        chart = newChart(chartEl);
        line = chart.addSeries(LineSeries, { color: "#4cc9f0", lineWidth: 2, title: `${sym} ${col}` });
        const pts = (a.series[0]?.points ?? []).map((p) => ({ time: chartTime(p[0]!), value: p[1]! })).filter((p, i, xs) => i === xs.length - 1 || p.time < xs[i + 1]!.time);
        line.setData(pts);
        lastUs = latest;
        lastChartTime = pts.at(-1)?.time ?? 0;
        chart.timeScale().fitContent();
      } finally {
        loadingHistory = false;
      }
      return;
    }
    if (latest <= lastUs) return;
    const fresh = await query(`SELECT ${symCol}, ${ts}, ${col} ${where} AND ${ts} > ${lastUs} ORDER BY ${ts} DESC LIMIT ${PER_POLL}`);
    if (selected !== sym || !line) return;
    const at = fresh.columns.findIndex((c) => c.type === "timestamp_us");
    const vAt = fresh.columns.findIndex((c) => c.name === col);
    for (const row of [...fresh.rows].reverse()) {
      const us = row[at] as number;
      const t = chartTime(us / 1000);
      if (typeof row[vAt] !== "number") continue;
      // One point per chart time: a tick in the same millisecond replaces the last point.
      if (t < lastChartTime) continue;
      line.update({ time: t as UTCTimestamp, value: row[vAt] });
      lastChartTime = t;
      lastUs = Math.max(lastUs, us);
    }
  }

  const tick = async (): Promise<void> => {
    if (stopped) return;
    const t0 = performance.now();
    try {
      // The JSON last-by needs no column names: any table's symbol and time columns.
      const r = await query(JSON.stringify({ op: "lastBy", table: table() }));
      if (stopped) return;
      error.replaceChildren();
      renderBoard(r);
      status.textContent = `${r.rows.length} symbols · ${(performance.now() - t0).toFixed(0)} ms · ${new Date().toISOString().slice(11, 19)} UTC`;
      await pollChart(r);
    } catch (e) {
      if (!stopped) error.replaceChildren(h("div.error", {}, (e as Error).message));
    }
    if (!stopped) timer = setTimeout(() => void tick(), POLL_MS);
  };
  void tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
    chart?.remove();
  };
}
