// TLS fixtures: certificates made by `pxctl certs init`'s code in a temp dir,
// and a locked nats-server that speaks TLS only, with a service connection
// that trusts the CA. The security tests and bench/tenants.ts (auth + TLS vs
// open) start their TLS NATS here.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { initCerts } from "../../src/runtime/certs.js";
import type { TlsFiles } from "../../src/runtime/certs.js";
import { natsTlsOptions } from "../../src/runtime/natsclient.js";
import { startNatsServer } from "../../src/runtime/servers/nats.js";
import type { NatsServer, NatsServerOptions } from "../../src/runtime/servers/nats.js";
import { serviceCreds, testNatsAuth } from "./cluster.js";

/** A CA with server (localhost, 127.0.0.1) and client certificates in a new temp dir. */
export function testCerts(): TlsFiles {
  return initCerts({ dir: join(mkdtempSync(join(tmpdir(), "px-tls-")), "tls") }).files;
}

export interface TlsNatsFixture {
  readonly server: NatsServer;
  /** Service credentials, TLS trusting `tls.ca`. */
  readonly nc: NatsConnection;
  readonly tls: TlsFiles;
  /** Connection options a Node client adds to trust the CA: `connect({ servers: server.url, ...tlsOptions, ...creds })`. */
  readonly tlsOptions: ReturnType<typeof natsTlsOptions>;
  close(): Promise<void>;
}

/**
 * A nats-server with the test identity's JWT auth and TLS on its client port
 * (`tls://127.0.0.1:<port>`). `options` pass on to startNatsServer (e.g.
 * `auth: "open"` for a TLS-only server without credentials).
 */
export async function tlsNatsFixture(options: NatsServerOptions = {}): Promise<TlsNatsFixture> {
  const tls = testCerts();
  const server = await startNatsServer({ auth: await testNatsAuth(), ...options, tls: { cert: tls.serverCert, key: tls.serverKey } });
  const tlsOptions = natsTlsOptions(tls.ca);
  const creds = server.auth === undefined ? {} : await serviceCreds();
  const nc = await connect({ servers: server.url, ...creds, ...tlsOptions });
  return {
    server,
    nc,
    tls,
    tlsOptions,
    close: async () => {
      await nc.close().catch(() => {});
      await server.stop();
      rmSync(server.dir, { recursive: true, force: true });
      rmSync(dirname(tls.dir), { recursive: true, force: true });
    },
  };
}
