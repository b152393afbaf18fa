"""An external publisher: ticks from Python with nats-py and pyarrow.

Usage: python_publisher.py NATS_URL [CREDS_FILE] [CA_FILE]  -> prints one JSON line per reply.
With a CA certificate (pxctl certs init's ca.crt) it connects over TLS, trusting that CA.
With a tenant publisher's .creds file (pxctl creds create), it connects with it
and the private inbox prefix written in its header, as a user would.
Sends a pandas DataFrame of trades (timestamps as pandas datetime64[ns], which
Proxist converts to microseconds), then a batch with a missing column.
"""
import asyncio
import json
import re
import sys

import nats
import pandas as pd
import pyarrow as pa


def ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def inbox_prefix(creds: str) -> str:
    with open(creds) as f:
        for line in f:
            if "connect with inbox prefix" in line:
                return line.split()[-1]
    return "_INBOX"


def creds_auth(creds: str) -> dict:
    """nats-py callbacks for a .creds file: the user JWT, and the server nonce
    signed with the user's nkey seed (ed25519 via PyNaCl; nats-py's own
    user_credentials path needs the `nkeys` package, which is what it does)."""
    import base64

    import nacl.signing

    text = open(creds).read()
    blocks = re.findall(r"-----BEGIN [^-]+-----\s*(\S+)\s*------END", text)
    jwt, seed = blocks[0], blocks[1]
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    key = nacl.signing.SigningKey(raw[2:34])  # 2 prefix bytes, 32-byte ed25519 seed, 2 CRC bytes

    return {
        "user_jwt_cb": lambda: jwt.encode(),
        "signature_cb": lambda nonce: base64.b64encode(key.sign(nonce.encode()).signature),
        "inbox_prefix": inbox_prefix(creds),
    }


async def main(url: str, creds: str | None, ca: str | None) -> None:
    opts = creds_auth(creds) if creds else {}
    if ca:
        import ssl

        opts["tls"] = ssl.create_default_context(cafile=ca)
    # One attempt: a refused connection (e.g. plaintext to a TLS server) is reported, not retried.
    nc = await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=5, **opts)
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


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None, sys.argv[3] if len(sys.argv) > 3 else None))
