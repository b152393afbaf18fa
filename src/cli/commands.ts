// pxctl commands: each turns an Invocation into control requests over NATS and
// output. IO (stdout, files, the confirmation prompt) is passed in so tests can
// run commands in-process.
import { connect } from "@nats-io/transport-node";
import type { NatsConnection } from "@nats-io/transport-node";
import { parse as parseYaml } from "yaml";
import { SpecError, parseClusterSpec } from "../../protocols/tablespec.js";
import { TokenNotFoundError, TokenOptionsError, TokenStoreUnavailableError, createToken, listTokens, revokeToken } from "../auth/index.js";
import { ControlReplyError, controlRequest, ControlUnreachableError } from "../control/index.js";
import type { ApplyReply, DescribeReply, GetReply, StatusView } from "../control/index.js";
import { USAGE, parsePxctlArgs } from "./args.js";
import type { Command, Invocation } from "./args.js";
import { CliError, EXIT } from "./exitcodes.js";
import { slowQueries } from "./queries.js";
import { applyText, describeText, getText, statusText, structured, tokensTable } from "./render.js";

export interface CliIO {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readFile: (path: string) => Promise<string>;
  /** Asks a question and resolves with the answer line (apply --confirm). */
  readonly prompt: (question: string) => Promise<string>;
  readonly env: Readonly<Record<string, string | undefined>>;
}

async function connectNats(url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url.split(","), name: "pxctl", timeout: 3_000, maxReconnectAttempts: 0 });
  } catch (e) {
    throw new CliError(EXIT.unreachable, `cannot reach NATS at ${url} (${(e as Error).message}); start the cluster (proxist up) or pass --nats`, { cause: e });
  }
}

function classify(e: unknown): CliError {
  if (e instanceof CliError) return e;
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
      print(s, () => statusText(s));
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
      });
      // Table output is the bare token so `TOKEN=$(pxctl token create ...)` works.
      print({ token, tenant: c.tenant, role: c.role, ttlSeconds: c.ttlSeconds ?? null }, () => token);
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
    case "queries.slow":
      return slowQueries(c, inv.output, io);
  }
}

/** Runs pxctl with `argv` (without node and script); resolves with the exit status. */
export async function runPxctl(argv: readonly string[], io: CliIO): Promise<number> {
  let nc: NatsConnection | undefined;
  try {
    const inv = parsePxctlArgs(argv, io.env);
    if (inv.command.kind === "help") {
      io.stdout(USAGE);
      return EXIT.ok;
    }
    // Invalid input exits with 2 before anything touches the network.
    const specDoc = inv.command.kind === "apply" ? await readSpec(io, inv.command.file) : undefined;
    if (inv.command.kind === "queries.slow") return await slowQueries(inv.command, inv.output, io);
    nc = await connectNats(inv.natsUrl);
    return await run(inv, nc, io, specDoc);
  } catch (e) {
    const err = classify(e);
    io.stderr(`pxctl: ${err.message}`);
    return err.code;
  } finally {
    await nc?.close().catch(() => {});
  }
}
