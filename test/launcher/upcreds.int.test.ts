// `proxist up` gives its node the auth directory it makes (PX_AUTH_DIR), so a
// tenant's admin token mints and revokes NATS credentials over gRPC out of the
// box (ProxistAdmin CreateCreds, RevokeCreds), as pxctl does.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { credentials } from "@grpc/grpc-js";
import { connect, credsAuthenticator } from "@nats-io/transport-node";
import { CreateCredsRequestSchema, RevokeCredsRequestSchema } from "../../protocols/gen/proxist/v1/admin_pb.js";
import { DEFAULT_CLUSTER_SPEC } from "../../protocols/tablespec.js";
import { AdminClient } from "../../src/api/index.js";
import { TickPublisher } from "../../src/client/publisher.js";
import { runPxctl } from "../../src/cli/commands.js";
import { RandomWalk, symbolNames } from "../../src/demo/randomwalk.js";
import { unary } from "../api/fixture.js";
import type { ServiceClient } from "../api/fixture.js";
import { freeBasePort, startLauncher } from "./launcher.js";
import type { Launcher } from "./launcher.js";

const dir = mkdtempSync(join(tmpdir(), "px-upcreds-"));
let launcher: Launcher | undefined;
afterAll(async () => {
  await launcher?.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
});

describe("launcher - proxist up and the gRPC credentials calls", () => {
  it("up - an admin token mints publisher credentials over gRPC on up's node; they ingest; RevokeCreds disconnects them", async () => {
    const base = await freeBasePort();
    launcher = await startLauncher(["--data-dir", dir, "--base-port", String(base), "--no-clickhouse"]);
    const nats = `nats://127.0.0.1:${base}`;
    const out: string[] = [];
    const io = { stdout: (t: string) => out.push(t), stderr: () => {}, readFile: async () => "", prompt: async () => "", env: { PX_DATA_DIR: dir } };
    expect(await runPxctl(["--nats", nats, "token", "create", "--tenant", "default", "--role", "admin", "--ttl", "1h"], io)).toBe(0);
    const token = out.pop()!.trim();
    const admin = new AdminClient(`127.0.0.1:${base + 5}`, credentials.createInsecure()) as unknown as ServiceClient;
    try {
      const made = await unary<{ creds: string; id: string; inboxPrefix: string }>(admin, "createCreds", create(CreateCredsRequestSchema, { role: "publisher", ttlSeconds: 600n }), token);
      expect(made.error).toBeUndefined();
      const nc = await connect({ servers: nats, maxReconnectAttempts: 0, authenticator: credsAuthenticator(new TextEncoder().encode(made.reply!.creds)), inboxPrefix: made.reply!.inboxPrefix });
      const trades = DEFAULT_CLUSTER_SPEC.tenants[0]!.tables[0]!;
      const ack = await new TickPublisher(nc, { tenant: "default", spec: trades, timeoutMs: 10_000 }).publish(new RandomWalk(symbolNames(5), 1, Date.now() * 1000 - 60_000_000).trades(100, 50_000_000));
      expect(ack.rows).toBe(100);
      const closed = nc.closed().then(() => "closed");
      expect((await unary(admin, "revokeCreds", create(RevokeCredsRequestSchema, { id: made.reply!.id }), token)).error).toBeUndefined();
      expect(await Promise.race([closed, new Promise((r) => setTimeout(r, 5_000)).then(() => "open")])).toBe("closed");
    } finally {
      admin.close();
    }
  }, 180_000);
});
