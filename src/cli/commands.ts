// pxctl commands: each turns an Invocation into control requests over NATS and
// output. IO (stdout, files, the confirmation prompt) is passed in so tests can
// run commands in-process.
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { parse as parseYaml } from "yaml";
import { SpecError, parseClusterSpec } from "../../protocols/tablespec.js";
import { CredsOptionsError, TokenNotFoundError, TokenOptionsError, TokenStoreUnavailableError, createToken, listCreds, listTokens, revokeToken } from "../auth/index.js";
import { explainNatsTlsError, natsCredsOptions, natsTlsOptions } from "../runtime/natsclient.js";
import { CertsError, certificateNames, initCerts } from "../runtime/certs.js";
import { issueCreds, revokeCreds } from "../runtime/natscreds.js";
import { loadOrCreateNatsAuth, writeSecretFile } from "../runtime/servers/natsauth.js";
import { ControlReplyError, controlRequest, ControlUnreachableError } from "../control/index.js";
import type { ApplyReply, DescribeReply, GetReply, StatusView } from "../control/index.js";
import { USAGE, parsePxctlArgs } from "./args.js";
import type { Command, Invocation } from "./args.js";
import { CliError, EXIT } from "./exitcodes.js";
import { slowQueries } from "./queries.js";
import { metricsView, runTop, topText } from "./top.js";
import { OPS_USAGE, parseOpsArgs, runOps } from "./ops.js";
import { applyText, credsTable, describeText, getText, statusText, structured, tokensTable } from "./render.js";

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readFile: (path: string) => Promise<string>;
  /** Asks a question and resolves with the answer line (apply --confirm). */
  readonly prompt: (question: string) => Promise<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** The deployment's NATS identity directory: --auth-dir, $PX_AUTH_DIR, else <$PX_DATA_DIR or .data>/auth. */
function authDirOf(inv: Invocation, io: CliIO): string {
  return resolve(inv.authDir ?? join(io.env.PX_DATA_DIR ?? ".data", "auth"));
}

/** The CA to trust for NATS: --tls-ca, else for a tls:// URL the CA `proxist up --tls` made next to the auth dir, when there is one. */
function natsCaOf(inv: Invocation, io: CliIO): string | undefined {
  const localCa = join(authDirOf(inv, io), "..", "tls", "ca.crt");
  return inv.tlsCa ?? (inv.natsUrl.startsWith("tls://") && existsSync(localCa) ? localCa : undefined);
}

async function connectNats(inv: Invocation, io: CliIO): Promise<NatsConnection> {
  const url = inv.natsUrl;
  const fallback = join(authDirOf(inv, io), "admin.creds");
  const creds = inv.natsCreds ?? (existsSync(fallback) ? fallback : undefined);
  const tlsCa = natsCaOf(inv, io);
  try {
    return await connect({ servers: url.split(","), name: "pxctl", timeout: 3_000, maxReconnectAttempts: 0, ...natsCredsOptions(creds), ...natsTlsOptions(tlsCa) });
  } catch (raw) {
    // A TLS server and a client without its CA (or the reverse) fail in words that name the fix.
    const e = explainNatsTlsError(raw, url, tlsCa);
    if (e !== raw) throw new CliError(EXIT.unreachable, e.message, { cause: raw });
    if (/authorization|authentication/i.test((e as Error).message)) {
      throw new CliError(EXIT.unreachable, `NATS at ${url} refused ${creds ? `the credentials ${creds}` : "a connection without credentials"} (${(e as Error).message}); pass admin credentials with --creds FILE or ${"$"}PX_NATS_CREDS (proxist up writes them to <data-dir>/auth/admin.creds)`, { cause: e });
    }
    throw new CliError(EXIT.unreachable, `cannot reach NATS at ${url} (${(e as Error).message}); start the cluster (proxist up) or pass --nats`, { cause: e });
  }
}

function classify(e: unknown): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof CertsError) return new CliError(e.message.startsWith("--hosts") ? EXIT.usage : EXIT.other, e.message, { cause: e });
  if (e instanceof TokenOptionsError) return new CliError(EXIT.usage, e.message, { cause: e });
  if (e instanceof TokenNotFoundError) return new CliError(EXIT.notFound, e.message, { cause: e });
  if (e instanceof TokenStoreUnavailableError) return new CliError(EXIT.unreachable, e.message, { cause: e });
  if (e instanceof ControlUnreachableError) return new CliError(EXIT.unreachable, e.message, { cause: e });
  if (e instanceof ControlReplyError) {
    switch (e.code) {
      case "CONFLICT":
        return new CliError(EXIT.conflict, `conflict: ${e.message}`, { cause: e });
      case "NOT_FOUND":
        return new CliError(EXIT.notFound, e.message, { cause: e });
      case "INVALID_ARGUMENT":
        return new CliError(EXIT.usage, e.message, { cause: e });
      default:
        return new CliError(EXIT.other, `${e.code}: ${e.message}`, { cause: e });
    }
  }
  return new CliError(EXIT.other, (e as Error).message ?? String(e), { cause: e });
}

async function readSpec(io: CliIO, file: string): Promise<unknown> {
  let text: string;
  try {
    text = await io.readFile(file);
  } catch (e) {
    throw new CliError(EXIT.usage, `cannot read ${file}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new CliError(EXIT.usage, `${file} is not valid YAML: ${(e as Error).message}`);
  }
  try {
    parseClusterSpec(doc); // fail before touching the network
  } catch (e) {
    if (e instanceof SpecError) throw new CliError(EXIT.usage, `${file}: ${e.message}`);
    throw e;
  }
  return doc;
}

async function run(inv: Invocation, nc: NatsConnection, io: CliIO, specDoc: unknown): Promise<number> {
  const c: Command = inv.command;
  const print = (value: unknown, human: () => string): void => io.stdout(inv.output === "table" ? human() : structured(value, inv.output));
  const req = <T>(verb: string, body: unknown): Promise<T> => controlRequest<T>(nc, verb, body, inv.timeoutMs);
  switch (c.kind) {
    case "help":
      io.stdout(USAGE);
      return EXIT.ok;
    case "status": {
      const s = await req<StatusView>("status", {});
      if (c.metrics === undefined) {
        print(s, () => statusText(s));
        return EXIT.ok;
      }
      const m = await metricsView(c.metrics.urls, c.metrics.intervalSeconds);
      print({ ...s, metrics: m }, () => `${statusText(s)}\n\nmetrics (over ${c.metrics!.intervalSeconds} s)\n${topText(m)}`);
      return EXIT.ok;
    }
    case "get": {
      const r = await req<GetReply>("get", { kind: c.what });
      print(r.items, () => getText(r));
      return EXIT.ok;
    }
    case "describe": {
      const r = await req<DescribeReply>("describe", { kind: c.what, name: c.name });
      print(r, () => describeText(r));
      return EXIT.ok;
    }
    case "apply": {
      const spec = specDoc;
      const plan = await req<ApplyReply>("apply", { spec, dryRun: true });
      if (c.dryRun || plan.diff.changes.length === 0) {
        print(plan, () => applyText(plan, true));
        return EXIT.ok;
      }
      if (inv.output === "table") io.stdout(applyText(plan, true).replace(/\n\ndry run: nothing applied$/, ""));
      if (c.confirm) {
        const answer = (await io.prompt(`apply ${plan.diff.changes.length} change(s)? [y/N] `)).trim().toLowerCase();
        if (answer !== "y" && answer !== "yes") {
          io.stderr("not applied");
          return EXIT.ok;
        }
      }
      // Compare-and-set against what the diff was made from: a change in between is a conflict, not an overwrite.
      const done = await req<ApplyReply>("apply", { spec, dryRun: false, expectedRevisions: plan.revisions });
      if (inv.output === "table") io.stdout(`applied (${Object.entries(done.revisions).map(([t, r]) => `${t}@${r}`).join(", ")})`);
      else print(done, () => "");
      return EXIT.ok;
    }
    case "token.create": {
      // Token administration talks to px_tokens directly (src/auth), not through a node.
      const token = await createToken(nc, {
        tenant: c.tenant,
        role: c.role,
        ...(c.ttlSeconds === undefined ? {} : { ttlSeconds: c.ttlSeconds }),
        ...(c.note === undefined ? {} : { note: c.note }),
        ...(c.tables === undefined ? {} : { tables: c.tables }),
      });
      // Table output is the bare token so `TOKEN=$(pxctl token create ...)` works.
      print({ token, tenant: c.tenant, role: c.role, ttlSeconds: c.ttlSeconds ?? null, tables: c.tables ?? null }, () => token);
      if (inv.output === "table") io.stderr("store this token now: it is not kept and cannot be shown again");
      return EXIT.ok;
    }
    case "token.list": {
      const tokens = await listTokens(nc, c.tenant);
      print(tokens, () => tokensTable(tokens, Date.now()));
      return EXIT.ok;
    }
    case "token.revoke": {
      await revokeToken(nc, c.id);
      print({ revoked: c.id }, () => `revoked ${c.id}`);
      return EXIT.ok;
    }
    case "creds.create": {
      const files = await loadOrCreateNatsAuth(authDirOf(inv, io));
      let out = "";
      // The shared sequence (src/runtime/natscreds.ts): the seed goes to the 0600 file only, before KV records the public key.
      const { minted, info: made } = await issueCreds(nc, files, { role: c.role, tenant: c.tenant, tables: c.tables, ttlSeconds: c.ttlSeconds, note: c.note, timeoutMs: inv.timeoutMs }, (m) => {
        out = resolve(c.out ?? `${c.tenant ? `${c.tenant}-` : ""}${c.role}-${m.credId}.creds`);
        if (existsSync(out)) throw new CliError(EXIT.conflict, `${out} exists; pass another --out (credentials are never overwritten)`);
        writeSecretFile(out, m.creds);
      }).catch((e: unknown) => {
        throw e instanceof CredsOptionsError ? new CliError(EXIT.usage, `creds create --${e.option}: ${e.message}`, { cause: e }) : e;
      });
      const feeds = made.feeds ?? undefined;
      const info = { id: minted.credId, file: out, tenant: c.tenant ?? null, role: c.role, tables: made.tables ?? null, ...(feeds === undefined ? {} : { feeds }), expiresAtMs: minted.expiresAtMs, inboxPrefix: minted.inboxPrefix ?? null };
      const feedLine = feeds === undefined ? "" : `; feeds it may consume: ${feeds.length === 0 ? "none yet (no feed reads only those tables; mint again after adding one)" : feeds.join(", ")}`;
      print(info, () => `wrote ${out} (id ${minted.credId}${minted.inboxPrefix ? `; clients connect with inbox prefix ${minted.inboxPrefix}` : ""}${feedLine})`);
      return EXIT.ok;
    }
    case "creds.list": {
      const list = await listCreds(nc, c.tenant);
      print(list, () => credsTable(list, Date.now()));
      return EXIT.ok;
    }
    case "creds.revoke": {
      const files = await loadOrCreateNatsAuth(authDirOf(inv, io));
      await revokeCreds(nc, { files, servers: inv.natsUrl.split(","), tlsCa: natsCaOf(inv, io) }, c.id);
      print({ revoked: c.id }, () => `revoked ${c.id} (NATS disconnects it now and refuses it from now on)`);
      return EXIT.ok;
    }
    case "queries.slow":
      return slowQueries(c, inv.output, io);
    case "certs.init":
      return certsInit(c, inv, io);
    case "top":
      return runTop(c, inv.output, io);
  }
}

/** `certs init`: the TLS material (src/runtime/certs.ts); says what it wrote and how to use it. */
function certsInit(c: Extract<Command, { kind: "certs.init" }>, inv: Invocation, io: CliIO): number {
  const dir = resolve(c.dir ?? join(io.env.PX_DATA_DIR ?? ".data", "tls"));
  const { files, created } = initCerts({ dir, hosts: c.hosts, ...(c.days === undefined ? {} : { days: c.days }) });
  const info = { dir, created, ca: files.ca, serverCert: files.serverCert, serverKey: files.serverKey, clientCert: files.clientCert, clientKey: files.clientKey, serverNames: certificateNames(files.serverCert) };
  const human = (): string =>
    [
      created.length === 0 ? `${dir}: every file exists; kept (delete the directory to start over)` : `wrote ${created.map((p) => p.slice(dir.length + 1)).join(", ")} in ${dir} (keys mode 0600)`,
      `server certificate names: ${info.serverNames}`,
      `servers: proxist up --tls uses <data-dir>/tls; a node takes PX_TLS_CERT=${files.serverCert} PX_TLS_KEY=${files.serverKey}`,
      `clients trust the CA: PX_TLS_CA=${files.ca} (pxctl --tls-ca, nats-py ssl.create_default_context(cafile=...), pyarrow flight tls_root_certs)`,
    ].join("\n");
  io.stdout(inv.output === "table" ? human() : structured(info, inv.output));
  return EXIT.ok;
}

/** Runs pxctl with `argv` (without node and script); resolves with the exit status. */
export async function runPxctl(argv: readonly string[], io: CliIO): Promise<number> {
  let nc: NatsConnection | undefined;
  try {
    // compact, snapshot, events: src/cli/ops.ts.
    const ops = parseOpsArgs(argv, io.env);
    if (ops !== undefined) {
      if (argv.includes("--help") || argv.includes("-h")) {
        io.stdout(OPS_USAGE);
        return EXIT.ok;
      }
      nc = await connectNats(ops.inv, io);
      return await runOps(ops.ops, ops.inv.output, nc, io.stdout);
    }
    const inv = parsePxctlArgs(argv, io.env);
    if (inv.command.kind === "help") {
      io.stdout(USAGE);
      return EXIT.ok;
    }
    // Invalid input exits with 2 before anything touches the network.
    const specDoc = inv.command.kind === "apply" ? await readSpec(io, inv.command.file) : undefined;
    if (inv.command.kind === "queries.slow") return await slowQueries(inv.command, inv.output, io);
    if (inv.command.kind === "top") return await runTop(inv.command, inv.output, io);
    if (inv.command.kind === "certs.init") return certsInit(inv.command, inv, io);
    nc = await connectNats(inv, io);
    return await run(inv, nc, io, specDoc);
  } catch (e) {
    const err = classify(e);
    io.stderr(`pxctl: ${err.message}`);
    return err.code;
  } finally {
    await nc?.close().catch(() => {});
  }
}
