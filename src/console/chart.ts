// Charts with lightweight-charts (TradingView's library for financial series):
// candlesticks for bars, lines for ticks and rolling values. The chart's time
// axis counts milliseconds (it takes them as its "seconds", and the formatters
// here print them back as UTC times), so ticks a millisecond apart stay apart.
import { CandlestickSeries, ColorType, createChart, LineSeries } from "lightweight-charts";
import type { IChartApi, ISeriesApi, SeriesType, Time, UTCTimestamp } from "lightweight-charts";
import type { ChartAnswer } from "./api.js";

export const PALETTE = ["#4cc9f0", "#f72585", "#b5e48c", "#ffb703", "#9d4edd", "#06d6a0", "#ef476f", "#118ab2", "#fb8500", "#8ecae6", "#e9c46a", "#a8dadc"];

const pad = (n: number, w = 2): string => String(n).padStart(w, "0");

/** "14:30:05.123" for the axis; the date at midnight. */
function tick(time: Time): string {
  const d = new Date(time as number);
  const ms = d.getUTCMilliseconds();
  const hms = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  if (ms !== 0) return `${hms}.${pad(ms, 3)}`;
  if (hms === "00:00:00") return d.toISOString().slice(0, 10);
  return d.getUTCSeconds() === 0 ? hms.slice(0, 5) : hms;
}

const full = (time: Time): string => new Date(time as number).toISOString().replace("T", " ").replace("Z", "");

export const chartTime = (ms: number): UTCTimestamp => Math.round(ms) as UTCTimestamp;

export function newChart(el: HTMLElement): IChartApi {
  return createChart(el, {
    autoSize: true,
    layout: { background: { type: ColorType.Solid, color: "#0f141a" }, textColor: "#c9d1d9", fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" },
    grid: { vertLines: { color: "#1c232c" }, horzLines: { color: "#1c232c" } },
    rightPriceScale: { borderColor: "#2a323c" },
    timeScale: { borderColor: "#2a323c", timeVisible: true, secondsVisible: true, tickMarkFormatter: tick },
    localization: { timeFormatter: full },
    crosshair: { mode: 0 },
  });
}

/** Points with one value per chart time (the last one wins), in time order. */
function byTime<T extends { time: UTCTimestamp }>(xs: T[]): T[] {
  const out: T[] = [];
  for (const x of xs) {
    if (out.length > 0 && out[out.length - 1]!.time >= x.time) {
      if (out[out.length - 1]!.time === x.time) out[out.length - 1] = x;
      continue;
    }
    out.push(x);
  }
  return out;
}

/** Draws a /v1/chart answer into `el` (replacing what was there); returns the chart to dispose. */
export function drawAnswer(el: HTMLElement, a: ChartAnswer): IChartApi {
  el.replaceChildren();
  const chart = newChart(el);
  a.series.forEach((s, k) => {
    let series: ISeriesApi<SeriesType>;
    if (a.kind === "candles") {
      series = chart.addSeries(CandlestickSeries, { upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350", title: s.name });
      series.setData(byTime(s.points.map((p) => ({ time: chartTime(p[0]!), open: p[1]!, high: p[2]!, low: p[3]!, close: p[4]! }))));
    } else {
      series = chart.addSeries(LineSeries, { color: PALETTE[k % PALETTE.length]!, lineWidth: 2, title: s.name, priceLineVisible: false });
      series.setData(byTime(s.points.map((p) => ({ time: chartTime(p[0]!), value: p[1]! }))));
    }
  });
  chart.timeScale().fitContent();
  return chart;
}
