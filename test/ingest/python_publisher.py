"""An external publisher: ticks from Python with nats-py and pyarrow.

Usage: python_publisher.py NATS_URL  -> prints one JSON line per reply.
Sends a pandas DataFrame of trades (timestamps as pandas datetime64[ns], which
Proxist converts to microseconds), then a batch with a missing column.
"""
import asyncio
import json
import sys

import nats
import pandas as pd
import pyarrow as pa


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


async def main(url: str) -> None:
    nc = await nats.connect(url)
    df = pd.DataFrame(
        {
            "sym": ["AAPL", "MSFT", "AAPL", "IBM"],
            "ts": pd.to_datetime(
                ["2026-11-25T14:30:00.000001Z", "2026-11-25T14:30:00.5Z", "2026-11-25T14:30:01Z", "2026-11-25T14:30:02.25Z"],
                format="ISO8601",
            ),
            "price": [190.5, 410.25, 190.75, 150.0],
            "size": [100.0, 200.0, 300.0, 50.0],
        }
    )
    good = pa.Table.from_pandas(df, preserve_index=False)
    reply = await nc.request(
        "px.default.ingest.trades", ipc(good), timeout=5, headers={"Px-Producer-Id": "py-1", "Px-Producer-Seq": "1"}
    )
    print(json.dumps(json.loads(reply.data)))
    bad = pa.table({"sym": ["AAPL"], "ts": pa.array([1], pa.int64()), "price": [1.0]})
    reply = await nc.request("px.default.ingest.trades", ipc(bad), timeout=5)
    print(json.dumps(json.loads(reply.data)))
    await nc.close()


asyncio.run(main(sys.argv[1]))
