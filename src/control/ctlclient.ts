// Client side of the control messages: one request on px.ctl.<verb>, the reply
// decoded, failures classified (nobody answers vs. the node said no).
import type { NatsConnection } from "@nats-io/transport-node";
import { decodeControlReply, encodeControlRequest } from "../../protocols/codec.js";
import { controlSubject } from "../../protocols/subjects.js";
import type { ControlErrorCode } from "./handlers.js";
import { utf8 } from "./kv.js";
import { TaggedError } from "../../protocols/tagged.js";

/** No Proxist node answered (none running, or NATS cannot route to one). */
export class ControlUnreachableError extends TaggedError("ControlUnreachableError") {}

/** A node answered with an error. */
export class ControlReplyError extends TaggedError("ControlReplyError") {
  constructor(
    readonly code: ControlErrorCode | string,
    message: string,
  ) {
    super(message);
  }
}

let seq = 0;

export async function controlRequest<T>(nc: NatsConnection, verb: string, body: unknown, timeoutMs = 5_000): Promise<T> {
  const data = encodeControlRequest({ verb, requestId: `${process.pid}-${++seq}`, body: utf8.encode(JSON.stringify(body ?? {})) });
  let replyData: Uint8Array;
  try {
    replyData = (await nc.request(controlSubject(verb), data, { timeout: timeoutMs })).data;
  } catch (e) {
    const msg = (e as Error).message;
    if (/no responders|503/i.test(msg)) {
      throw new ControlUnreachableError(`no Proxist node answers on ${controlSubject(verb)}; start a node (proxist node / proxist up) or point --nats at the right server`, { cause: e });
    }
    if (/timeout/i.test(msg)) throw new ControlUnreachableError(`no answer on ${controlSubject(verb)} within ${timeoutMs} ms; the node may be overloaded or stuck`, { cause: e });
    throw e;
  }
  const reply = decodeControlReply(replyData);
  if (!reply.ok) throw new ControlReplyError(reply.errorCode, reply.errorMessage);
  return JSON.parse(utf8.decode(reply.body)) as T;
}
