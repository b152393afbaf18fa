"""Flight SQL vs plain Flight DoGet for bench/console.ts, from pyarrow.flight:
the same rows read `--rounds` times each way, alternating (so load drift hits
both alike). A Flight SQL round is what a Flight SQL client does for a
statement: GetFlightInfo of an Any-wrapped CommandStatementQuery (built from
FlightSql.proto via the descriptor set `--descriptors`), then DoGet of its
ticket into a Table; a plain round is DoGet of the JSON ticket into a Table.
Prints JSON with each round's seconds and the rows. Never prints the token."""
import argparse
import json
import time

import pyarrow.flight as flight
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory


def statement(descriptors, sql):
    pool = descriptor_pool.DescriptorPool()
    for f in descriptor_pb2.FileDescriptorSet.FromString(open(descriptors, "rb").read()).file:
        pool.Add(f)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("arrow.flight.protocol.sql.CommandStatementQuery"))
    a = any_pb2.Any()
    a.Pack(cls(query=sql))
    return a.SerializeToString()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--descriptors", required=True)
    p.add_argument("--sql", required=True)
    p.add_argument("--ticket", required=True, help="the JSON query plain DoGet runs (the same rows)")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    client = flight.FlightClient(f"grpc://127.0.0.1:{args.port}")
    opts = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {args.token}".encode())])
    cmd = flight.FlightDescriptor.for_command(statement(args.descriptors, args.sql))
    ticket = flight.Ticket(args.ticket.encode())

    def via_sql():
        info = client.get_flight_info(cmd, opts)
        return client.do_get(info.endpoints[0].ticket, opts).read_all()

    def via_doget():
        return client.do_get(ticket, opts).read_all()

    for _ in range(2):  # warm-up: connection, server JIT, both processes' memory
        via_sql()
        via_doget()
    sql_s, doget_s, sql_rows, doget_rows = [], [], 0, 0
    for i in range(args.rounds):
        # Alternate which goes first, so neither always runs on the other's leftovers.
        for which in (("sql", "doget") if i % 2 == 0 else ("doget", "sql")):
            t0 = time.perf_counter()
            t = via_sql() if which == "sql" else via_doget()
            took = time.perf_counter() - t0
            if which == "sql":
                sql_s.append(took)
                sql_rows = t.num_rows
            else:
                doget_s.append(took)
                doget_rows = t.num_rows
            del t
    print(json.dumps({"flightsql_seconds": sql_s, "doget_seconds": doget_s, "flightsql_rows": sql_rows, "doget_rows": doget_rows}))


if __name__ == "__main__":
    main()
