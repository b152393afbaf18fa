"""Flight SQL client for the API integration tests: a real pyarrow.flight client
sending Flight SQL commands as google.protobuf.Any-wrapped messages. The
messages are built from the repository's FlightSql.proto (a FileDescriptorSet
that `buf build` wrote, passed as --descriptors) with google.protobuf's
descriptor pool and message factory: no hand-rolled encoding. Prints one JSON
object; a Flight error is {"error": <class>, "message": <text>}. Never prints
the token."""
import argparse
import json
import sys

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message_factory

PKG = "arrow.flight.protocol.sql"


class Sql:
    """Message classes of arrow.flight.protocol.sql from the descriptor set."""

    def __init__(self, path):
        fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
        self.pool = descriptor_pool.DescriptorPool()
        for f in fds.file:
            self.pool.Add(f)

    def new(self, name, **fields):
        cls = message_factory.GetMessageClass(self.pool.FindMessageTypeByName(f"{PKG}.{name}"))
        return cls(**fields)

    def packed(self, name, **fields):
        a = any_pb2.Any()
        a.Pack(self.new(name, **fields))
        return a.SerializeToString()

    def unpack(self, name, data):
        a = any_pb2.Any.FromString(data)
        m = self.new(name)
        if not a.Unpack(m):
            raise ValueError(f"the result is a {a.type_url}, not a {name}")
        return m


def fetch(client, opts, cmd):
    """GetFlightInfo of a command descriptor, then DoGet of its one ticket."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd), opts)
    table = client.do_get(info.endpoints[0].ticket, opts).read_all()
    return info, table


def plain(client, opts, query):
    return client.do_get(flight.Ticket(query.encode()), opts).read_all()


def rows_of(table):
    return [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()} for r in table.to_pylist()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", default="")
    p.add_argument("--descriptors", required=True)
    p.add_argument("--sql", default="")
    p.add_argument("--query", default="", help="the JSON query plain DoGet runs for comparison")
    p.add_argument("--info", default="", help="comma-separated SqlInfo ids")
    p.add_argument("--pattern", default=None)
    p.add_argument("--include-schema", action="store_true")
    args = p.parse_args()

    sql = Sql(args.descriptors)
    client = flight.FlightClient(f"grpc://127.0.0.1:{args.port}")
    opts = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {args.token}".encode())] if args.token else [])
    out = {}
    try:
        if args.command == "sqlinfo":
            ids = [int(x) for x in args.info.split(",")] if args.info else []
            info, t = fetch(client, opts, sql.packed("CommandGetSqlInfo", info=ids))
            out = {"schema": [f"{f.name}:{f.type}{'' if f.nullable else ' not null'}" for f in info.schema], "values": {str(r["info_name"]): r["value"] for r in t.to_pylist()}}
        elif args.command == "tables":
            kw = {"include_schema": args.include_schema}
            if args.pattern is not None:
                kw["table_name_filter_pattern"] = args.pattern
            info, t = fetch(client, opts, sql.packed("CommandGetTables", **kw))
            tables = []
            for r in t.to_pylist():
                row = {k: r[k] for k in ("catalog_name", "db_schema_name", "table_name", "table_type")}
                if "table_schema" in r:
                    s = pa.ipc.read_schema(pa.py_buffer(r["table_schema"]))
                    row["table_schema"] = [f"{f.name}:{f.type}" for f in s]
                tables.append(row)
            out = {"columns": t.schema.names, "info_columns": info.schema.names, "tables": tables}
        elif args.command == "browse":
            _, catalogs = fetch(client, opts, sql.packed("CommandGetCatalogs"))
            _, schemas = fetch(client, opts, sql.packed("CommandGetDbSchemas"))
            kw = {} if args.pattern is None else {"db_schema_filter_pattern": args.pattern}
            _, filtered = fetch(client, opts, sql.packed("CommandGetDbSchemas", **kw))
            _, types = fetch(client, opts, sql.packed("CommandGetTableTypes"))
            out = {
                "catalogs": catalogs.to_pylist(),
                "catalog_columns": catalogs.schema.names,
                "schemas": schemas.to_pylist(),
                "filtered": filtered.to_pylist(),
                "table_types": types.to_pylist(),
            }
        elif args.command == "statement":
            cmd = sql.packed("CommandStatementQuery", query=args.sql)
            info, t = fetch(client, opts, cmd)
            schema = client.get_schema(flight.FlightDescriptor.for_command(cmd), opts).schema
            same = plain(client, opts, args.query)
            out = {
                "get_schema": schema.names,
                "rows": t.num_rows,
                "columns": t.schema.names,
                "types": [str(f.type) for f in t.schema],
                "info_schema": info.schema.names,
                "equal": t.equals(same),
                "plain_rows": same.num_rows,
                "first": rows_of(t.slice(0, 1)),
            }
        elif args.command == "prepared":
            results = list(client.do_action(flight.Action("CreatePreparedStatement", sql.packed("ActionCreatePreparedStatementRequest", query=args.sql)), opts))
            created = sql.unpack("ActionCreatePreparedStatementResult", results[0].body.to_pybytes())
            handle = created.prepared_statement_handle
            dataset = pa.ipc.read_schema(pa.py_buffer(created.dataset_schema))
            params = pa.ipc.read_schema(pa.py_buffer(created.parameter_schema))
            same = plain(client, opts, args.query)
            runs = []
            for _ in range(2):
                _, t = fetch(client, opts, sql.packed("CommandPreparedStatementQuery", prepared_statement_handle=handle))
                runs.append({"rows": t.num_rows, "equal": t.equals(same)})
            closed = list(client.do_action(flight.Action("ClosePreparedStatement", sql.packed("ActionClosePreparedStatementRequest", prepared_statement_handle=handle)), opts))
            actions = sorted(a.type for a in client.list_actions(opts))
            out = {"dataset_schema": dataset.names, "parameters": len(params), "runs": runs, "close_results": len(closed), "actions": actions}
        elif args.command == "update":
            d = flight.FlightDescriptor.for_command(sql.packed("CommandStatementUpdate", query=args.sql))
            writer, _ = client.do_put(d, pa.schema([("x", pa.int64())]), opts)
            writer.close()
            out = {"stored": True}
        elif args.command == "bind":
            d = flight.FlightDescriptor.for_command(sql.packed("CommandPreparedStatementQuery", prepared_statement_handle=b"pxsql1\nSELECT 1"))
            writer, _ = client.do_put(d, pa.schema([("x", pa.int64())]), opts)
            writer.write_batch(pa.record_batch([pa.array([1], pa.int64())], names=["x"]))
            writer.close()
            out = {"stored": True}
        elif args.command == "keys":
            fetch(client, opts, sql.packed("CommandGetPrimaryKeys", table="trades"))
            out = {"answered": True}
        else:
            raise SystemExit(f"unknown command {args.command}")
    except Exception as e:  # every failure is reported, the test asserts on it
        out = {"error": type(e).__name__, "message": str(e)}
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    sys.exit(main())
