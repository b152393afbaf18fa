"""Reads a materialized Proxist feed with plain nats-py and pyarrow, as a
consumer in any language would: a pull consumer on px.<tenant>.feed.<name> of
stream PX_FEED_<tenant>, with subscriber-role credentials (.creds file and the
private inbox prefix written in it). Prints one JSON line per message: kind,
offset token, rows and the first row. Usage: nats_consumer.py URL CREDS TENANT NAME COUNT"""
import asyncio
import base64
import json
import re
import sys

import nacl.signing
import nats
import pyarrow as pa


def creds_auth(creds: str) -> dict:
    """nats-py callbacks for a .creds file (as test/ingest/python_publisher.py):
    the user JWT, the nonce signed with the nkey seed, the private inbox prefix."""
    text = open(creds).read()
    blocks = re.findall(r"-----BEGIN [^-]+-----\s*(\S+)\s*------END", text)
    jwt, seed = blocks[0], blocks[1]
    raw = base64.b32decode(seed + "=" * (-len(seed) % 8))
    key = nacl.signing.SigningKey(raw[2:34])
    prefix = re.search(r"connect with inbox prefix (\S+)", text)
    return {
        "user_jwt_cb": lambda: jwt.encode(),
        "signature_cb": lambda nonce: base64.b64encode(key.sign(nonce.encode()).signature),
        "inbox_prefix": prefix.group(1) if prefix else "_INBOX",
    }


async def main(url: str, creds: str, tenant: str, name: str, count: int) -> None:
    nc = await nats.connect(url, **creds_auth(creds))
    js = nc.jetstream()
    sub = await js.pull_subscribe(f"px.{tenant}.feed.{name}", stream=f"PX_FEED_{tenant}")
    seen = 0
    while seen < count:
        for m in await sub.fetch(min(64, count - seen), timeout=10):
            table = pa.ipc.open_stream(m.data).read_all()
            first = {k: v[0] for k, v in table.to_pydict().items()} if table.num_rows else None
            print(json.dumps({"kind": m.headers["Px-Feed-Kind"], "offset": m.headers["Px-Feed-Offset"], "rows": table.num_rows, "first": first}), flush=True)
            await m.ack()
            seen += 1
    await nc.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
