// A virtualized result table: only the rows in view (plus a margin) exist in
// the DOM, placed over a spacer as tall as every row, so a million-row result
// scrolls as fast as ten. Times (timestamp_us columns) show as UTC date-times.
import type { Column } from "./api.js";
import { fmtMicros, h } from "./dom.js";

const ROW_PX = 24;
const MARGIN_ROWS = 10;
/** Browsers cap an element's height (Firefox near 17.9 M px): taller results scroll proportionally within this. */
const MAX_BODY_PX = 15_000_000;

export function cellText(c: Column, v: unknown): string {
  if (v === null || v === undefined) return "null";
  if (c.type === "timestamp_us" && typeof v === "number") return fmtMicros(v);
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
  return String(v);
}

export interface VirtualTable {
  readonly el: HTMLElement;
  /** Rows now in the DOM (tests and the status line read it). */
  rendered(): number;
}

export function virtualTable(columns: readonly Column[], rows: readonly (readonly unknown[])[]): VirtualTable {
  const widths = columns.map((c) => (c.type === "timestamp_us" ? 250 : /utf8|dictionary/i.test(c.type) ? 110 : 130));
  const template = widths.map((w) => `${w}px`).join(" ");
  const width = widths.reduce((a, b) => a + b, 0);
  const head = h("div.vt-head", { style: `grid-template-columns:${template};width:${width}px` }, ...columns.map((c) => h("div.vt-cell", { title: c.type }, c.name)));
  const totalPx = rows.length * ROW_PX;
  const body = h("div.vt-body", { style: `height:${Math.min(totalPx, MAX_BODY_PX)}px;width:${width}px` });
  const scroller = h("div.vt-scroll", {}, head, body);
  const el = h("div.vt", { role: "table", "data-rows": String(rows.length) }, scroller);
  let drawn = "";
  let count = 0;
  const draw = (): void => {
    const view = scroller.clientHeight || 600;
    // Where the view is in the whole result (the same as scrollTop unless the result is taller than MAX_BODY_PX).
    const ratio = totalPx > MAX_BODY_PX ? (totalPx - view) / (MAX_BODY_PX - view) : 1;
    const top = scroller.scrollTop * ratio;
    const shift = scroller.scrollTop - top;
    const first = Math.max(0, Math.floor(top / ROW_PX) - MARGIN_ROWS);
    const last = Math.min(rows.length, Math.ceil((top + view) / ROW_PX) + MARGIN_ROWS);
    const key = `${first}:${last}:${shift}`;
    if (key === drawn) return;
    drawn = key;
    const frag = document.createDocumentFragment();
    for (let i = first; i < last; i++) {
      const r = rows[i]!;
      const row = h("div.vt-row", { role: "row", "data-i": String(i), style: `top:${i * ROW_PX + shift}px;grid-template-columns:${template}` });
      if (i % 2) row.classList.add("odd");
      for (let j = 0; j < columns.length; j++) {
        const v = r[j];
        row.append(h(`div.vt-cell${typeof v === "number" && columns[j]!.type !== "timestamp_us" ? ".num" : ""}`, { role: "cell" }, cellText(columns[j]!, v)));
      }
      frag.append(row);
    }
    body.replaceChildren(frag);
    count = last - first;
  };
  let pending = false;
  scroller.addEventListener("scroll", () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      draw();
    });
  });
  new ResizeObserver(() => draw()).observe(scroller);
  draw();
  return { el, rendered: () => count };
}
