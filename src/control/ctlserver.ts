// Control-message server: answers px.ctl.<verb> requests (protobuf
// ControlRequest/ControlReply with JSON bodies). Every node runs one in the
// queue group px-ctl, so exactly one node answers each request.
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { CONTROL_VERSION, decodeControlRequest, encodeControlReply } from "../../protocols/codec.js";
import { controlSubject } from "../../protocols/subjects.js";
import { ControlError, handleControl } from "./handlers.js";
import type { ControlBackend } from "./handlers.js";
import { utf8 } from "./kv.js";

export const CONTROL_QUEUE = "px-ctl";

export interface ControlServer {
  stop(): Promise<void>;
}

export function replyBytes(result: { ok: true; body: unknown } | { ok: false; code: string; message: string }): Uint8Array {
  return result.ok
    ? encodeControlReply({ ok: true, errorCode: "", errorMessage: "", body: utf8.encode(JSON.stringify(result.body)) })
    : encodeControlReply({ ok: false, errorCode: result.code, errorMessage: result.message, body: new Uint8Array() });
}

/** Decodes, runs and encodes one request; never throws (every failure is an error reply). */
export async function serveControl(data: Uint8Array, subjectVerb: string, backend: ControlBackend): Promise<Uint8Array> {
  let verb = subjectVerb;
  try {
    const req = decodeControlRequest(data);
    verb = req.verb || subjectVerb;
    const body: unknown = req.body.length === 0 ? {} : JSON.parse(utf8.decode(req.body));
    return replyBytes({ ok: true, body: await handleControl(verb, body, backend) });
  } catch (e) {
    if (e instanceof ControlError) return replyBytes({ ok: false, code: e.code, message: e.message });
    const name = (e as Error).name;
    if (name === "UnsupportedVersionError" || name === "CorruptMessageError" || e instanceof SyntaxError) {
      return replyBytes({ ok: false, code: "INVALID_ARGUMENT", message: `${verb}: ${(e as Error).message} (this node speaks control version ${CONTROL_VERSION})` });
    }
    return replyBytes({ ok: false, code: "INTERNAL", message: `${verb} failed on the node: ${(e as Error).message}` });
  }
}

export function startControlServer(nc: NatsConnection, backend: ControlBackend, o: { log?: (line: string) => void } = {}): ControlServer {
  const sub: Subscription = nc.subscribe(controlSubject("*"), {
    queue: CONTROL_QUEUE,
    callback: (err, msg) => {
      if (err) {
        o.log?.(`control server: ${err.message}`);
        return;
      }
      const verb = msg.subject.split(".").at(-1) ?? "";
      void serveControl(msg.data, verb, backend).then((reply) => msg.respond(reply));
    },
  });
  return {
    stop: async () => {
      await sub.drain().catch(() => sub.unsubscribe());
    },
  };
}
