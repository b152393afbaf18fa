"""A pyarrow.flight consumer of a Proxist feed over DoExchange, run as a child
process by test/feed/doexchange.int.test.ts. It subscribes, reads record
batches with their app_metadata (JSON: kind, feed, offset, rows, shards) until a
row with ts >= --stop-ts arrives; with --cut-after K it cancels the call after K
batches and subscribes again from the offset of the last batch it got, as a
consumer resuming after a crash would. Prints one JSON object on stdout: the
batches in order (offset, kind, rows as lists with ts in integer microseconds)
and the number of calls; a Flight error is {"error": <class>, "message": <text>}."""
import argparse
import json

import pyarrow as pa
import pyarrow.flight as flight


def rows_of(batch):
    cols = {}
    for name, col in zip(batch.schema.names, batch.columns):
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.int64())
        if pa.types.is_dictionary(col.type):
            col = col.cast(pa.string())
        cols[name] = col.to_pylist()
    return [dict(zip(cols.keys(), vals)) for vals in zip(*cols.values())]


def subscribe(client, headers, command):
    descriptor = flight.FlightDescriptor.for_command(json.dumps(command))
    writer, reader = client.do_exchange(descriptor, flight.FlightCallOptions(headers=headers))
    # The feed needs nothing more from the client: half-close, keep reading.
    writer.done_writing()
    return writer, reader


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["read"])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--feed", required=True, help="the feed's query JSON")
    p.add_argument("--from", dest="start", default="now")
    p.add_argument("--stop-ts", type=int, required=True)
    p.add_argument("--cut-after", type=int, default=0)
    p.add_argument("--max-batches", type=int, default=100000)
    args = p.parse_args()
    client = flight.connect(f"grpc://127.0.0.1:{args.port}")
    headers = [(b"authorization", f"Bearer {args.token}".encode())]
    feed = json.loads(args.feed)
    batches, calls, start_meta = [], 0, None
    offset = args.start
    try:
        done = False
        while not done:
            writer, reader = subscribe(client, headers, {"feed": feed, "from": offset})
            calls += 1
            got_here = 0
            while True:
                chunk = reader.read_chunk()  # raises StopIteration at the end of the stream
                meta = json.loads(chunk.app_metadata.to_pybytes()) if chunk.app_metadata is not None else None
                if chunk.data is None:
                    # The metadata-only "start" message: where this call begins.
                    if calls == 1:
                        start_meta = meta
                    continue
                rows = rows_of(chunk.data)
                batches.append({"kind": meta["kind"], "offset": meta["offset"], "rows": rows, "shards": meta["shards"]})
                offset = meta["offset"]
                got_here += 1
                if any(r["ts"] >= args.stop_ts for r in rows) or len(batches) >= args.max_batches:
                    done = True
                    break
                if calls == 1 and args.cut_after and got_here >= args.cut_after:
                    break
            reader.cancel()
        print(json.dumps({"batches": batches, "calls": calls, "start": start_meta}))
    except flight.FlightError as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e), "batches": batches}))
    except pa.ArrowException as e:
        print(json.dumps({"error": type(e).__name__, "message": str(e), "batches": batches}))


if __name__ == "__main__":
    main()
