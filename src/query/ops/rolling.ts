// rolling: per row, aggregates over the symbol's last N rows or the last
// duration of time (ties end at the current row in (ts, lsn, row) order); ema
// runs over the whole series.
import type { RollingQuery } from "../../../protocols/query.js";
import type { TableSpec } from "../../../protocols/tablespec.js";
import { orderRows } from "../order.js";
import type { OutTable } from "../output.js";
import type { SymbolSeries } from "../series.js";
import { ema, slidingAggregates } from "../window.js";
import { fieldsOf, selectedColumns } from "./fields.js";
import { aggInputs, gatherPerSeries, gatherValid, rowsTable } from "./rows.js";
import { udfArgs } from "./udf.js";
import type { UdfRunner } from "./udf.js";

/** `udf` runs the query's user-defined aggregates (required when it has some). */
export function rollingOp(q: RollingQuery, spec: TableSpec, series: readonly SymbolSeries[], udf?: UdfRunner): OutTable {
  const fields = fieldsOf(q, spec, undefined);
  const per = q.aggregates.map(() => ({ data: [] as Float64Array[], valid: [] as Uint8Array[] }));
  for (const s of series) {
    // Locals, not s.ts / s.lo in the loops: the series objects come in several shapes and each read costs.
    const lo = s.lo;
    const ts = s.ts;
    const m = s.hi - lo;
    const start = new Int32Array(m);
    const end = new Int32Array(m);
    if ("rows" in q.window) {
      const w = q.window.rows;
      for (let i = 0; i < m; i++) {
        end[i] = lo + i + 1;
        start[i] = Math.max(0, lo + i + 1 - w);
      }
    } else {
      const w = q.window.micros;
      let a = 0;
      for (let i = 0; i < m; i++) {
        const t = ts[lo + i]!;
        while (ts[a]! <= t - w) a++;
        start[i] = a;
        end[i] = lo + i + 1;
      }
    }
    const inputs = aggInputs(spec, s, q.aggregates);
    const win = inputs.filter((x) => x.agg.fn !== "ema" && x.agg.fn !== "udf");
    const outs = slidingAggregates(win, start, end);
    let k = 0;
    inputs.forEach((inp, a) => {
      if (inp.agg.fn === "udf") {
        // The window's rows as indices into the whole series (rows before lo are window context).
        const d = udf!.window(inp.agg, start, end, udfArgs(spec, s, inp.agg, 0, s.n));
        per[a]!.data.push(d);
        per[a]!.valid.push(Uint8Array.from(d, (x) => (x === x ? 1 : 0)));
      } else if (inp.agg.fn === "ema") {
        per[a]!.data.push(ema(inp.x!, s.lo, s.hi, inp.agg.alpha!));
        per[a]!.valid.push(new Uint8Array(m).fill(1));
      } else {
        const o = outs[k++]!;
        per[a]!.data.push(o.data);
        per[a]!.valid.push(o.valid);
      }
    });
  }
  const refs = orderRows(series, q.sort, false);
  return rowsTable(
    fields,
    spec,
    selectedColumns(spec, q.columns),
    series,
    refs,
    per.map((p) => gatherPerSeries(p.data, series, refs)),
    per.map((p, a) => (fields[2 + selectedColumns(spec, q.columns).length + a]!.nullable ? gatherValid(p.valid, series, refs) : undefined)),
  );
}
