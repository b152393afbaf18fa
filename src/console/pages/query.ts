// The query editor: SQL or a JSON query (Ctrl+Enter runs), the result as a
// virtualized table and as a chart (the node downsamples it: POST /v1/chart),
// and CSV / Parquet downloads of the same statement through POST /v1/query.
import type { IChartApi } from "lightweight-charts";
import { chart, post, query } from "../api.js";
import type { QueryResult } from "../api.js";
import { drawAnswer } from "../chart.js";
import { fmtNumber, h } from "../dom.js";
import { EXAMPLES } from "../examples.js";
import { virtualTable } from "../table.js";

const LAST_KEY = "proxist.lastQuery";
export const PARQUET = "application/vnd.apache.parquet";

/** "sql" or "json" by the text's first character (the node decides the same way). */
const modeOf = (text: string): "SQL" | "JSON" => (text.trimStart().startsWith("{") ? "JSON" : "SQL");

async function download(text: string, accept: string, name: string): Promise<void> {
  const r = await post("/v1/query?ts=iso", text, accept);
  const blob = await r.blob();
  const a = h("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
}

export function queryPage(root: HTMLElement): () => void {
  const editor = h("textarea.editor#editor", { spellcheck: false, placeholder: "SELECT * FROM trades LATEST ON ts PARTITION BY sym   (Ctrl+Enter runs)" });
  editor.value = localStorage.getItem(LAST_KEY) ?? EXAMPLES[0]!.text;
  const mode = h("span.badge#mode", {}, modeOf(editor.value));
  const examples = h("select#examples", {}, h("option", { value: "" }, "Examples…"), ...EXAMPLES.map((e, i) => h("option", { value: String(i) }, e.name)));
  const run = h("button.primary#run", { title: "Ctrl+Enter" }, "Run ▶");
  const csv = h("button#csv", {}, "Download CSV");
  const parquet = h("button#parquet", {}, "Download Parquet");
  const status = h("div.status#status", {}, "Write SQL or a JSON query and press Ctrl+Enter.");
  const error = h("div#error");
  const tableTab = h("button.active#tab-table", {}, "Table");
  const chartTab = h("button#tab-chart", {}, "Chart");
  const tablePane = h("div.pane#table-pane");
  const chartPane = h("div.pane#chart-pane", { style: "display:none" });
  const chartEl = h("div.chart#chart");
  const chartNote = h("div.note#chart-note");
  chartPane.append(chartNote, chartEl);
  let current: { text: string; result: QueryResult } | undefined;
  let drawn: IChartApi | undefined;
  let chartFor: string | undefined;
  let seq = 0;

  const showError = (e: unknown): void => error.replaceChildren(h("div.error", {}, (e as Error).message));

  const show = (tab: "table" | "chart"): void => {
    tableTab.classList.toggle("active", tab === "table");
    chartTab.classList.toggle("active", tab === "chart");
    tablePane.style.display = tab === "table" ? "" : "none";
    chartPane.style.display = tab === "chart" ? "" : "none";
    if (tab === "chart") void drawChart();
  };

  async function drawChart(): Promise<void> {
    if (!current || chartFor === current.text) return;
    const text = current.text;
    chartFor = text;
    chartNote.textContent = "Asking the node for a downsampled chart…";
    try {
      const a = await chart(text);
      if (chartFor !== text) return;
      drawn?.remove();
      drawn = undefined;
      if (a.kind === "none") {
        chartEl.replaceChildren();
        chartNote.textContent = `Nothing to chart: ${a.notes.join("; ")}`;
        return;
      }
      drawn = drawAnswer(chartEl, a);
      chartEl.dataset.kind = a.kind;
      const points = a.series.reduce((n, s) => n + s.points.length, 0);
      chartNote.textContent = `${a.kind === "candles" ? "Candlesticks" : "Lines"}: ${a.series.map((s) => s.name).join(", ")} · ${fmtNumber(points)} points drawn of ${fmtNumber(a.rows)} rows${a.bucketMs > 0 ? ` (downsampled on the node to ${a.bucketMs} ms buckets)` : ""}${a.notes.length ? ` · ${a.notes.join("; ")}` : ""}`;
    } catch (e) {
      chartFor = undefined;
      chartNote.textContent = "";
      showError(e);
    }
  }

  const execute = async (): Promise<void> => {
    const text = editor.value.trim();
    if (text === "") return;
    if (modeOf(text) === "JSON") {
      try {
        JSON.parse(text);
      } catch (e) {
        showError(new Error(`the JSON query is not valid JSON: ${(e as Error).message}`));
        return;
      }
    }
    localStorage.setItem(LAST_KEY, text);
    const mine = ++seq;
    error.replaceChildren();
    run.disabled = true;
    status.textContent = "Running…";
    const t0 = performance.now();
    try {
      const result = await query(text);
      if (mine !== seq) return;
      const ms = performance.now() - t0;
      current = { text, result };
      chartFor = undefined;
      // EXPLAIN answers {explain: ...}: show it as text.
      const explain = (result as unknown as { explain?: unknown }).explain;
      if (explain !== undefined) {
        tablePane.replaceChildren(h("pre.card.mono#explain", { style: "overflow:auto;height:100%;margin:0" }, JSON.stringify(explain, null, 2)));
        status.textContent = `EXPLAIN in ${ms.toFixed(0)} ms`;
        show("table");
        return;
      }
      const vt = virtualTable(result.columns, result.rows);
      tablePane.replaceChildren(vt.el);
      status.textContent = `${fmtNumber(result.rows.length)} rows · ${result.columns.length} columns · ${ms.toFixed(0)} ms${result.complete ? "" : " · INCOMPLETE"}${result.notes.length ? ` · ${result.notes.join("; ")}` : ""}`;
      const names = new Set(result.columns.map((c) => c.name));
      const bars = ["open", "high", "low", "close"].every((c) => names.has(c));
      show(bars ? "chart" : chartPane.style.display === "none" ? "table" : "chart");
    } catch (e) {
      if (mine !== seq) return;
      status.textContent = "";
      showError(e);
    } finally {
      if (mine === seq) run.disabled = false;
    }
  };

  const downloadAs = (accept: string, ext: string) => () => {
    error.replaceChildren();
    download(editor.value.trim(), accept, `proxist-${new Date().toISOString().replace(/[:.]/g, "-")}.${ext}`).catch(showError);
  };

  editor.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      void execute();
    }
  });
  editor.addEventListener("input", () => (mode.textContent = modeOf(editor.value)));
  examples.addEventListener("change", () => {
    const ex = EXAMPLES[Number(examples.value)];
    if (ex) editor.value = ex.text;
    mode.textContent = modeOf(editor.value);
    examples.value = "";
    editor.focus();
  });
  run.addEventListener("click", () => void execute());
  csv.addEventListener("click", downloadAs("text/csv", "csv"));
  parquet.addEventListener("click", downloadAs(PARQUET, "parquet"));
  tableTab.addEventListener("click", () => show("table"));
  chartTab.addEventListener("click", () => show("chart"));

  root.replaceChildren(
    h("div.row", { style: "margin-bottom:8px" }, examples, mode, h("span.spacer"), csv, parquet, run),
    editor,
    h("div.note", {}, "SQL (SELECT … LATEST ON, SAMPLE BY, ASOF JOIN, OVER windows, EXPLAIN) or a JSON query ({\"op\": …}). Ctrl+Enter runs."),
    error,
    status,
    h("div.tabs", {}, tableTab, chartTab),
    tablePane,
    chartPane,
  );
  editor.focus();
  return () => drawn?.remove();
}
