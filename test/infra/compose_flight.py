"""pyarrow.flight query for the compose test: one DoGet of a query ticket against
grpc+tls://127.0.0.1:<port> trusting --ca; prints {"rows", "digest", "metadata"} (digest: sha256 of the
rows sorted by ts, sym, price) or {"error", "message"}. Never prints the token."""
import argparse
import hashlib
import json

import pyarrow.flight as flight


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--query", required=True)
    p.add_argument("--ca", required=True)
    a = p.parse_args()
    try:
        with open(a.ca, "rb") as f:
            client = flight.FlightClient(f"grpc+tls://127.0.0.1:{a.port}", tls_root_certs=f.read())
        opts = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {a.token}".encode())])
        reader = client.do_get(flight.Ticket(a.query.encode()), opts)
        t = reader.read_all()
        meta = {k.decode(): v.decode() for k, v in (t.schema.metadata or {}).items()}
        cols = t.to_pydict()
        rows = sorted(zip(*(cols[c] for c in ("ts", "sym", "price"))), key=lambda r: (str(r[0]), r[1], r[2]))
        digest = hashlib.sha256(json.dumps(rows, default=str).encode()).hexdigest()
        out = {"rows": t.num_rows, "digest": digest, "metadata": meta}
    except Exception as e:  # reported, the test asserts on it
        out = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
