// DoPut reassembly: Flight sends one IPC message per FlightData (data_header =
// flatbuffer Message, data_body = body). Each record batch becomes a complete
// IPC stream (schema + current dictionaries + the batch) for the gateway.
// Every message is checked (structure, limits) as it arrives.
import { IpcError, IpcStreamChecker, joinIpcStream, readMessageInfo } from "../ipc/index.js";
import type { IpcMessage } from "../ipc/index.js";
import type { ApiLimits } from "../limits.js";

export interface AssembledBatch {
  readonly payload: Uint8Array;
  readonly rows: number;
  /** true when the batch or a dictionary it uses is compressed */
  readonly compressed: boolean;
}

export class FlightIpcAssembler {
  private schema: IpcMessage | undefined;
  /** Per dictionary id: the base dictionary and its deltas since. */
  private readonly dictionaries = new Map<number, IpcMessage[]>();
  private readonly checker: IpcStreamChecker;
  private messages = 0;

  constructor(
    private readonly limits: ApiLimits,
    private readonly what: string,
  ) {
    this.checker = new IpcStreamChecker(limits, what);
  }

  /** Feeds one FlightData; returns the batch a record batch message completes. */
  push(header: Uint8Array, body: Uint8Array): AssembledBatch | undefined {
    const what = `${this.what} message ${this.messages++}`;
    if (header.length === 0) {
      // A metadata-only FlightData (app_metadata, or the bare descriptor): nothing to ingest.
      if (body.length > 0) throw new IpcError(`${what}: data_body without data_header; every Arrow message needs its header`);
      return undefined;
    }
    const info = readMessageInfo(header, this.limits, what);
    if (body.length < info.bodyLength) {
      throw new IpcError(`${what}: data_body has ${body.length} bytes but the header declares ${info.bodyLength}; the message is truncated`);
    }
    const m = { header, body: body.subarray(0, info.bodyLength), info };
    this.checker.accept(m);
    // Kept messages are copied: a view would pin the whole gRPC message it came in for the call's lifetime.
    const kept = (): IpcMessage => ({ header: header.slice(), body: m.body.slice() });
    switch (info.type) {
      case "schema":
        this.schema = kept();
        return undefined;
      case "dictionaryBatch": {
        const list = info.isDelta ? (this.dictionaries.get(info.id) ?? []) : [];
        list.push(kept());
        this.dictionaries.set(info.id, list);
        return undefined;
      }
      case "recordBatch":
        return { payload: joinIpcStream([this.schema!, ...[...this.dictionaries.values()].flat(), m]), rows: info.batch.rows, compressed: this.checker.compressed };
    }
  }
}
