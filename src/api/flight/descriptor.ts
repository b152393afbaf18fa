// Flight descriptors and tickets as Proxist reads them:
//  - PATH [table] or [tenant, table]: a table (DoPut target; whole-table read);
//  - CMD JSON: for DoPut {"table", "producerId"?, "firstSeq"?}, otherwise a query;
//  - a ticket is the JSON query DoGet runs (GetFlightInfo hands them out).
import type { Principal } from "../../auth/index.js";
import { FlightDescriptor_DescriptorType } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import type { FlightDescriptor } from "../../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { ApiError } from "../errors.js";
import { producerOf } from "../ingest.js";
import type { QueryEngine } from "../queryengine.js";
import { parseQuery } from "../queryjson.js";
import { scopedTable } from "../scope.js";
import { flightSqlCommand, refusePut } from "./sql/index.js";

export interface PutTarget {
  readonly table: string;
  readonly producerId: string | undefined;
  readonly firstSeq: bigint;
}

function missing(what: string): ApiError {
  return new ApiError("INVALID_ARGUMENT", `${what} needs a FlightDescriptor: a path [table] or a JSON command`);
}

export function putTarget(p: Principal, d: FlightDescriptor | undefined): PutTarget {
  if (!d) throw missing("the first FlightData of DoPut");
  if (d.type === FlightDescriptor_DescriptorType.PATH) return { table: scopedTable(p, d.path), producerId: undefined, firstSeq: 0n };
  if (d.type !== FlightDescriptor_DescriptorType.CMD) throw missing("DoPut");
  const sql = flightSqlCommand(d.cmd, "the DoPut descriptor command");
  if (sql !== undefined) throw refusePut(sql);
  const cmd = parseQuery(p, d.cmd, "the DoPut command") as Record<string, unknown>;
  if (typeof cmd.table !== "string") throw new ApiError("INVALID_ARGUMENT", `the DoPut command needs "table": {"table":"trades","producerId":"p1","firstSeq":0}`);
  const producerId = cmd.producerId === undefined ? undefined : String(cmd.producerId);
  let firstSeq = 0n;
  if (cmd.firstSeq !== undefined) {
    try {
      firstSeq = BigInt(cmd.firstSeq as string | number);
    } catch {
      throw new ApiError("INVALID_ARGUMENT", `the DoPut command's firstSeq must be an unsigned integer`);
    }
  }
  if (producerId !== undefined) producerOf(producerId, firstSeq);
  return { table: scopedTable(p, [cmd.table]), producerId, firstSeq };
}

/** The query a descriptor stands for (GetFlightInfo, GetSchema, PollFlightInfo). */
export function descriptorQuery(p: Principal, d: FlightDescriptor, engine: QueryEngine): { query: unknown; table: string | undefined } {
  if (d.type === FlightDescriptor_DescriptorType.PATH) {
    const table = scopedTable(p, d.path);
    return { query: engine.tableQuery(table), table };
  }
  if (d.type === FlightDescriptor_DescriptorType.CMD) return { query: parseQuery(p, d.cmd, "the descriptor command"), table: undefined };
  throw missing("this call");
}

export function ticketQuery(p: Principal, ticket: Uint8Array): unknown {
  return parseQuery(p, ticket, "the ticket");
}
