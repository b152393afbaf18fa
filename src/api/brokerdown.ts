// Which errors mean "the broker did not answer now" rather than "this call is
// wrong": a NATS request that timed out, found no responder, or ran on a closed
// or reconnecting connection, and JetStream's 503 (its meta leader or a stream
// leader is being elected). A client retries those; answering INTERNAL would
// tell it the server is broken (seen: a feed Subscribe during a NATS leader election).
import { ClosedConnectionError, ConnectionError, DrainingConnectionError, NoRespondersError, TimeoutError } from "@nats-io/transport-node";
import { JetStreamApiError } from "@nats-io/jetstream";

const TRANSIENT = [TimeoutError, NoRespondersError, ClosedConnectionError, DrainingConnectionError, ConnectionError] as const;

/**
 * The broker-side reason when `e` or an error in its cause chain is a transient NATS failure
 * (wrappers such as RequestError and JetStream's "not enabled", thrown on no responders, carry it as cause).
 */
export function brokerUnavailable(e: unknown): string | undefined {
  for (let c: unknown = e, depth = 0; c instanceof Error && depth < 5; c = c.cause, depth++) {
    if (TRANSIENT.some((k) => c instanceof k)) return `${c.name}: ${c.message}`;
    if (c instanceof JetStreamApiError && c.status === 503) return `JetStream ${c.status} (${c.message})`;
  }
  return undefined;
}
