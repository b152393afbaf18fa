"""Arrow Flight client used by the API integration tests (a real pyarrow.flight
client, run as a child process). Prints one JSON object on stdout; a Flight
error is reported as {"error": <class>, "message": <text>} with exit code 0.
Never prints the token."""
import argparse
import json
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.flight as flight


def auth_headers(client, args):
    if not args.token:
        return []
    if args.basic:
        user = args.user or "proxist"
        return [client.authenticate_basic_token(user.encode(), args.token.encode())]
    return [(b"authorization", f"Bearer {args.token}".encode())]


def frame(rows, t0, seed):
    rng = np.random.default_rng(seed)
    syms = np.array(["AAPL", "MSFT", "IBM", "GOOG", "NVDA"])
    return pd.DataFrame(
        {
            "sym": syms[rng.integers(0, len(syms), rows)],
            "ts": (t0 + np.arange(rows, dtype=np.int64) * 7).astype(np.int64),
            "price": rng.uniform(10, 500, rows).round(4),
            "size": rng.integers(1, 1000, rows).astype(np.float64),
        }
    )


def put(client, headers, descriptor, table, batch_rows, compression):
    write_options = pa.ipc.IpcWriteOptions(compression=compression) if compression else None
    call_opts = flight.FlightCallOptions(headers=headers, write_options=write_options)
    writer, reader = client.do_put(descriptor, table.schema, options=call_opts)
    acks = []
    for batch in table.to_batches(max_chunksize=batch_rows):
        writer.write_batch(batch)
    writer.done_writing()
    while True:
        buf = reader.read()
        if buf is None:
            break
        acks.append(json.loads(buf.to_pybytes()))
    writer.close()
    return acks


def normalize(df):
    df = df.copy()
    df["sym"] = df["sym"].astype(str)
    if pd.api.types.is_datetime64_any_dtype(df["ts"]):
        # Results carry ts as timestamp[us, UTC]; compare as microseconds since the epoch.
        df["ts"] = (df["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(microseconds=1)
    return df.sort_values(["ts", "sym"]).reset_index(drop=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="")
    p.add_argument("--user", default="")
    p.add_argument("--basic", action="store_true")
    p.add_argument("--table", default="trades")
    p.add_argument("--path", default="")
    p.add_argument("--cmd", default="")
    p.add_argument("--rows", type=int, default=1000)
    p.add_argument("--batch-rows", type=int, default=256)
    p.add_argument("--t0", type=int, default=1_700_000_000_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--compression", default="")
    p.add_argument("--query", default="")
    p.add_argument("--tls-ca", default="", help="CA certificate (PEM): connect with grpc+tls, trusting it")
    p.add_argument("--host", default="127.0.0.1")
    args = p.parse_args()

    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            client = flight.FlightClient(f"grpc+tls://{args.host}:{args.port}", tls_root_certs=f.read())
    else:
        client = flight.FlightClient(f"grpc://{args.host}:{args.port}")
    out = {}
    try:
        headers = auth_headers(client, args)
        opts = flight.FlightCallOptions(headers=headers)
        if args.command == "handshake":
            header = client.authenticate_basic_token((args.user or "proxist").encode(), args.token.encode())
            out = {"key": header[0].decode(), "bearer_is_token": header[1] == f"Bearer {args.token}".encode()}
        elif args.command == "roundtrip":
            df = frame(args.rows, args.t0, args.seed)
            table = pa.Table.from_pandas(df, preserve_index=False)
            acks = put(client, headers, flight.FlightDescriptor.for_path(args.table), table, args.batch_rows, args.compression or None)
            # minLsn: the query waits until the shards applied every acked batch (read-after-write).
            q = {"table": args.table, "t0": int(df.ts.min()), "t1": int(df.ts.max()) + 1, "minLsn": max(a["lastLsn"] for a in acks)}
            info = client.get_flight_info(flight.FlightDescriptor.for_command(json.dumps(q)), opts)
            got = client.do_get(info.endpoints[0].ticket, opts).read_all()
            got_df = got.to_pandas()
            a, b = normalize(df), normalize(got_df[["sym", "ts", "price", "size"]])
            out = {
                "acks": acks,
                "put_rows": len(df),
                "got_rows": len(got_df),
                "columns": got.schema.names,
                "info_schema": info.schema.names,
                "equal": bool(a.equals(b)),
            }
        elif args.command == "put":
            df = frame(args.rows, args.t0, args.seed)
            table = pa.Table.from_pandas(df, preserve_index=False)
            d = flight.FlightDescriptor.for_command(args.cmd) if args.cmd else flight.FlightDescriptor.for_path(*(args.path or args.table).split("/"))
            out = {"acks": put(client, headers, d, table, args.batch_rows, args.compression or None)}
        elif args.command == "get":
            reader = client.do_get(flight.Ticket(args.query.encode()), opts)
            t = reader.read_all()
            out = {"rows": t.num_rows, "columns": t.schema.names}
        elif args.command == "types":
            reader = client.do_get(flight.Ticket(args.query.encode()), opts)
            df = reader.read_pandas()
            schema = reader.schema if hasattr(reader, "schema") else None
            meta = {k.decode(): v.decode() for k, v in (schema.metadata or {}).items()} if schema is not None else {}
            out = {"rows": len(df), "ts_dtype": str(df["ts"].dtype), "first_ts": (df["ts"].iloc[0].isoformat() if hasattr(df["ts"].iloc[0], "isoformat") else int(df["ts"].iloc[0])) if len(df) else None, "metadata": meta}
        elif args.command == "info":
            d = flight.FlightDescriptor.for_command(args.cmd) if args.cmd else flight.FlightDescriptor.for_path(*(args.path or args.table).split("/"))
            info = client.get_flight_info(d, opts)
            out = {"schema": info.schema.names, "endpoints": len(info.endpoints), "ticket": info.endpoints[0].ticket.ticket.decode()}
        elif args.command == "schema":
            d = flight.FlightDescriptor.for_path(*(args.path or args.table).split("/"))
            out = {"schema": client.get_schema(d, opts).schema.names}
        elif args.command == "list":
            out = {"flights": [{"path": [p.decode() if isinstance(p, bytes) else p for p in f.descriptor.path], "schema": f.schema.names} for f in client.list_flights(options=opts)]}
        else:
            raise SystemExit(f"unknown command {args.command}")
    except Exception as e:  # every failure is reported, the test asserts on it
        out = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
