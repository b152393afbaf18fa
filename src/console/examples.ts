// Example statements for the query editor (they run against `./proxist up --demo`).
export const EXAMPLES: readonly { readonly name: string; readonly text: string }[] = [
  { name: "Last trade per symbol", text: "SELECT * FROM trades LATEST ON ts PARTITION BY sym" },
  { name: "Ticks, last 5 minutes", text: "SELECT sym, ts, price, size FROM trades WHERE sym IN ('AAPL') AND ts > now() - INTERVAL '5m'" },
  { name: "1 s bars (candlesticks)", text: "SELECT * FROM trades WHERE sym IN ('AAPL') AND ts > now() - INTERVAL '10m' SAMPLE BY 1s" },
  { name: "1 m bars, filled", text: "SELECT * FROM trades WHERE sym IN ('AAPL') AND ts > now() - INTERVAL '1h' SAMPLE BY 1m FILL(PREV)" },
  { name: "Rolling VWAP and EMA", text: "SELECT sym, ts, price, vwap(price, size) OVER (PARTITION BY sym ORDER BY ts RANGE INTERVAL '1m' PRECEDING) AS vwap1m, ema(price, 0.1) OVER (PARTITION BY sym ORDER BY ts) AS ema FROM trades WHERE sym IN ('AAPL') AND ts > now() - INTERVAL '5m'" },
  { name: "As-of join trades to quotes", text: "SELECT t.sym, t.ts, t.price, q.bid, q.ask FROM trades t ASOF JOIN quotes q ON (sym) TOLERANCE '500ms' WHERE t.ts > now() - INTERVAL '1m'" },
  { name: "EXPLAIN", text: "EXPLAIN SELECT * FROM trades WHERE ts > now() - INTERVAL '1h' SAMPLE BY 1m" },
  { name: "JSON query model (last-by)", text: '{"op": "lastBy", "table": "trades"}' },
];
