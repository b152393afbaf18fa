// Client constructors for both services (grpc-js generic clients over the
// generated descriptors), for pxctl, benchmarks and tests. Pass the token with
// bearer(token) as call metadata.
import { create, fromBinary } from "@bufbuild/protobuf";
import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { Metadata, credentials, makeGenericClientConstructor } from "@grpc/grpc-js";
import type { ChannelCredentials, ServiceClientConstructor } from "@grpc/grpc-js";
import { FlightDataSchema, FlightService } from "../../protocols/gen/arrow/flight/protocol/Flight_pb.js";
import { Proxist } from "../../protocols/gen/proxist/v1/api_pb.js";
import { ProxistFeeds } from "../../protocols/gen/proxist/v1/feed_pb.js";
import { readFlightData } from "./flight/wire.js";
import { clientDefinition } from "./grpcdef.js";
import { ProxistAdmin } from "../../protocols/gen/proxist/v1/admin_pb.js";

/** new ProxistClient(`host:port`, credentials.createInsecure()); methods: ingest, query, status. */
export const ProxistClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(Proxist), Proxist.typeName);

/** new AdminClient(`host:port`, credentials.createInsecure()); methods: applyTenant, createToken, listTokens, revokeToken, createCreds, listCreds, revokeCreds (an admin token). */
export const AdminClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(ProxistAdmin), ProxistAdmin.typeName);

/** new FeedsClient(`host:port`, credentials.createInsecure()); method: subscribe (see src/client/feeds.ts for a resuming subscriber). */
export const FeedsClient: ServiceClientConstructor = makeGenericClientConstructor(clientDefinition(ProxistFeeds), ProxistFeeds.typeName);

const generic = clientDefinition(FlightService);
const flightDefinition = {
  ...generic,
  // DoGet replies are read as views into the received message (no copy of the Arrow body); anything unusual goes through protobuf-es.
  doGet: {
    ...generic.doGet!,
    responseDeserialize: (b: Buffer) => {
      const f = readFlightData(b);
      return f === undefined ? fromBinary(FlightDataSchema, b) : create(FlightDataSchema, f);
    },
  },
};

/** new FlightClient(`host:port`, credentials.createInsecure()); methods: handshake, doGet, doPut, .... */
export const FlightClient: ServiceClientConstructor = makeGenericClientConstructor(flightDefinition, FlightService.typeName);

/**
 * Channel options for reading large results: a 16 MiB HTTP/2 receive window
 * (grpc-js keeps the 64 KiB default otherwise, and a client then waits a round
 * trip for every 64 KiB of a DoGet). Pass as the third constructor argument.
 */
export const LARGE_READS = { "grpc-node.flow_control_window": 16 << 20 } as const;

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/**
 * Channel credentials for a node: TLS trusting the CA certificate at `caPath`
 * (`pxctl certs init` writes ca.crt; PX_TLS_CA), or plaintext without one.
 * A plaintext client to a TLS port fails with UNAVAILABLE (see tlsHint).
 */
export function channelCredentials(caPath: string | undefined): ChannelCredentials {
  if (caPath === undefined || caPath === "") return credentials.createInsecure();
  let ca: Buffer;
  try {
    ca = readFileSync(caPath);
  } catch (e) {
    throw new Error(`cannot read the TLS CA certificate ${caPath} (${(e as Error).message}); pass the ca.crt pxctl certs init wrote (PX_TLS_CA)`, { cause: e });
  }
  return credentials.createSsl(ca);
}

/** Does `host:port` answer a TLS handshake? (Any certificate: this only tells TLS from plaintext.) */
export function speaksTls(address: string, timeoutMs = 2_000): Promise<boolean> {
  const at = address.lastIndexOf(":");
  const host = address.slice(0, at).replace(/^\[|\]$/g, "");
  const port = Number(address.slice(at + 1));
  return new Promise((resolve) => {
    const socket = tlsConnect({ host, port, rejectUnauthorized: false, ...(isIP(host) ? {} : { servername: host }), ALPNProtocols: ["h2"] });
    const done = (v: boolean): void => {
      socket.destroy();
      resolve(v);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once("secureConnect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * What to tell a person whose call to `address` failed before reaching the
 * server: grpc-js reports a TLS mismatch as UNAVAILABLE "Failed to connect",
 * like a server that is not there. Asks the port whether it speaks TLS.
 */
export async function tlsHint(e: { code?: number; details?: string }, address: string, tls: boolean): Promise<string | undefined> {
  if (e.code !== 14) return undefined; // UNAVAILABLE
  const speaks = await speaksTls(address);
  if (!tls && speaks) return `${address} speaks TLS: connect with its CA certificate (PX_TLS_CA or --tls-ca; proxist up --tls and pxctl certs init print where it is)`;
  if (tls && !speaks) return `${address} does not answer TLS: it serves plaintext (drop PX_TLS_CA / --tls-ca) or is not running`;
  if (tls && /certificate|SSL|handshake|self.signed/i.test(e.details ?? "")) return `TLS handshake with ${address} failed: check that PX_TLS_CA is the CA that signed its certificate and that the certificate names the host you dial (pxctl certs init --hosts)`;
  return undefined;
}
