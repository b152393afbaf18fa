"""Reads a Parquet file with pyarrow.parquet for test/node/parquet.int.test.ts;
prints JSON: the Arrow schema pyarrow sees, the Parquet physical and logical
type of each column, and the rows with times as integer microseconds."""
import json
import sys

import pyarrow as pa
import pyarrow.parquet as pq


def main():
    path = sys.argv[1]
    t = pq.read_table(path)
    pf = pq.ParquetFile(path)
    cols = {c.name: {"physical": c.physical_type, "logical": str(c.logical_type)} for c in pf.schema}
    out_cols = []
    for f in t.schema:
        col = t.column(f.name)
        if pa.types.is_timestamp(f.type):
            col = col.cast(pa.int64())
        elif pa.types.is_dictionary(f.type):
            col = col.cast(f.type.value_type)
        out_cols.append(col.to_pylist())
    rows = [list(r) for r in zip(*out_cols)] if out_cols else []
    print(json.dumps({"schema": [f"{f.name}:{f.type}" for f in t.schema], "parquet": cols, "rows": rows, "num_rows": t.num_rows}))


if __name__ == "__main__":
    main()
