"""Runs one Proxist query over Arrow Flight and prints the result as a DataFrame.

Usage: .venv/bin/python scripts/query.py '<JSON query>'
  TOKEN     a reader token (./proxist pxctl token create --tenant default --role reader)
  PX_GRPC   the node's gRPC/Flight address (default 127.0.0.1:50051)
  PX_TLS_CA the CA certificate of a node that speaks TLS (proxist up --tls prints it): grpc+tls
A string "now" or "now-<duration>" ("now-5m", "now-1h", "now-30s") in t0, t1 or
at is replaced by microseconds since the epoch before the query is sent; the
server itself takes integer microseconds only.
"""
import json
import os
import re
import sys
import time

import pandas as pd
import pyarrow.flight as fl

UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}


def resolve(v, now_us):
    if not isinstance(v, str):
        return v
    m = re.fullmatch(r"now(?:-(\d+)(us|ms|s|m|h|d))?", v)
    if not m:
        raise SystemExit(f'query.py: time "{v}" is not an integer, "now" or "now-<n><us|ms|s|m|h|d>"')
    return now_us - (int(m.group(1)) * UNITS[m.group(2)] if m.group(1) else 0)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    query = json.loads(sys.argv[1])
    now_us = time.time_ns() // 1000
    for k in ("t0", "t1", "at"):
        if k in query:
            query[k] = resolve(query[k], now_us)
    token = os.environ.get("TOKEN", "")
    if not token:
        raise SystemExit("query.py: set TOKEN (./proxist pxctl token create --tenant default --role reader)")
    address = os.environ.get("PX_GRPC", "127.0.0.1:50051")
    ca = os.environ.get("PX_TLS_CA", "")
    if ca:
        with open(ca, "rb") as f:
            client = fl.connect("grpc+tls://" + address, tls_root_certs=f.read())
    else:
        client = fl.connect("grpc://" + address)
    opts = fl.FlightCallOptions(headers=[(b"authorization", b"Bearer " + token.encode())])
    df = client.do_get(fl.Ticket(json.dumps(query).encode()), opts).read_pandas()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df)
    print(f"({len(df)} rows)")


if __name__ == "__main__":
    main()
