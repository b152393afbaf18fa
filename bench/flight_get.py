"""pyarrow.flight DoGet timing for bench/api.ts: reads one ticket `--runs` times,
first streaming (each record batch read and dropped, as curl drops ClickHouse's
bytes), then into a pyarrow Table (read_all); prints JSON with the seconds of
each run and the rows. Never prints the token."""
import argparse
import json
import time

import pyarrow.flight as flight


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--ticket", required=True)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    client = flight.FlightClient(f"grpc://127.0.0.1:{args.port}")
    opts = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {args.token}".encode())])
    ticket = flight.Ticket(args.ticket.encode())
    for _ in range(2):  # warm-up: connection, server JIT, both processes' memory
        client.do_get(ticket, opts).read_all()
    stream, stream_rows = [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        stream_rows = 0
        for chunk in client.do_get(ticket, opts):
            stream_rows += chunk.data.num_rows
        stream.append(time.perf_counter() - t0)
    table_s, rows = [], 0
    for _ in range(args.runs):
        t0 = time.perf_counter()
        table = client.do_get(ticket, opts).read_all()
        table_s.append(time.perf_counter() - t0)
        rows = table.num_rows
        del table
    print(json.dumps({"stream_seconds": stream, "stream_rows": stream_rows, "table_seconds": table_s, "rows": rows}))


if __name__ == "__main__":
    main()
