// Queries a node process the way a client does: gRPC `proxist.v1.Proxist/Query`
// with a reader token, the answer read back as plain rows (symbols as strings,
// timestamps and int64 as numbers, nulls as null) plus the result's
// completeness metadata (proxist.complete, proxist.notes) or the gRPC error.
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import type { ClientReadableStream, ServiceError, status as Status } from "@grpc/grpc-js";
import { tableFromIPC } from "apache-arrow";
import type { Table } from "apache-arrow";
import { QueryRequestSchema } from "../../protocols/gen/proxist/v1/api_pb.js";
import type { QueryChunk } from "../../protocols/gen/proxist/v1/api_pb.js";
import { LARGE_READS, ProxistClient, bearer } from "../../src/api/index.js";

export interface NodeAnswer {
  readonly rows: unknown[][];
  /** proxist.complete of the first chunk (true when the stream had no chunk and no error). */
  readonly complete: boolean;
  readonly notes: readonly string[];
  readonly error: { readonly code: Status; readonly details: string } | undefined;
}

const plain = (v: unknown): unknown => (typeof v === "bigint" ? Number(v) : v === undefined ? null : v);

/** Rows of Arrow tables; 64-bit integer and timestamp columns are read whole as bigints (Arrow's getters round timestamps to ms). */
export function arrowRows(tables: readonly Table[]): unknown[][] {
  const out: unknown[][] = [];
  for (const t of tables) {
    const cols = t.schema.fields.map((_, j) => {
      const v = t.getChildAt(j)!;
      const whole = v.toArray() as ArrayLike<unknown>;
      const wide = whole instanceof BigInt64Array || whole instanceof BigUint64Array;
      return (i: number): unknown => (!v.isValid(i) ? null : plain(wide ? whole[i] : v.get(i)));
    });
    for (let i = 0; i < t.numRows; i++) out.push(cols.map((c) => c(i)));
  }
  return out;
}

export class NodeQuerier {
  private readonly client: InstanceType<typeof ProxistClient>;

  constructor(
    grpcPort: number,
    private readonly token: string,
    host = "127.0.0.1",
  ) {
    // Chunks of 65,536 rows of a wide result (bars) pass grpc-js's default 4 MiB receive limit.
    this.client = new ProxistClient(`${host}:${grpcPort}`, credentials.createInsecure(), { ...LARGE_READS, "grpc.max_receive_message_length": -1 });
  }

  query(q: unknown, deadlineMs = 60_000): Promise<NodeAnswer> {
    return new Promise((resolve) => {
      const chunks: QueryChunk[] = [];
      const req = create(QueryRequestSchema, { queryJson: JSON.stringify(q) });
      const call = this.client.query!(req, bearer(this.token), { deadline: Date.now() + deadlineMs }) as ClientReadableStream<QueryChunk>;
      const done = (error: NodeAnswer["error"]): void => {
        const tables = chunks.map((c) => tableFromIPC(c.arrowIpc));
        const meta = tables[0]?.schema.metadata;
        const notes = meta?.get("proxist.notes");
        resolve({ rows: arrowRows(tables), complete: (meta?.get("proxist.complete") ?? "true") === "true", notes: notes ? notes.split("\n") : [], error });
      };
      call.on("data", (c: QueryChunk) => chunks.push(c));
      call.on("error", (e: ServiceError) => done({ code: e.code, details: e.details }));
      call.on("end", () => done(undefined));
    });
  }

  /** Rows of the answer, counted without reading their values (for timings); throws on a gRPC error. */
  count(q: unknown, deadlineMs = 600_000): Promise<{ rows: number; complete: boolean; notes: readonly string[] }> {
    return new Promise((resolve, reject) => {
      let rows = 0;
      let complete: boolean | undefined;
      let notes: readonly string[] = [];
      const req = create(QueryRequestSchema, { queryJson: JSON.stringify(q) });
      const call = this.client.query!(req, bearer(this.token), { deadline: Date.now() + deadlineMs }) as ClientReadableStream<QueryChunk>;
      call.on("data", (c: QueryChunk) => {
        const t = tableFromIPC(c.arrowIpc);
        complete ??= (t.schema.metadata.get("proxist.complete") ?? "true") === "true";
        if (notes.length === 0) notes = t.schema.metadata.get("proxist.notes")?.split("\n") ?? [];
        rows += t.numRows;
      });
      call.on("error", (e: ServiceError) => reject(new Error(`query ${JSON.stringify(q)}: ${e.details}`)));
      call.on("end", () => resolve({ rows, complete: complete ?? true, notes }));
    });
  }

  close(): void {
    this.client.close();
  }
}
