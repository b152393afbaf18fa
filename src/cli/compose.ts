// Entry of `./proxist compose up [--demo] [-d] [--images local|official]` and
// `./proxist compose down [-v]`: docker compose where a Docker engine runs, else
// Podman (installed and configured when missing) on locally built images.
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { ComposeError, down, ensureComposeNatsAuth, ensureComposeSecrets, ensureComposeTls, up } from "./compose/index.js";
import type { ComposeOptions } from "./compose/index.js";

const USAGE = `usage:
  proxist compose up [--demo] [-d] [--images local|official]
      the cluster of docker-compose.yml: 3 NATS servers, ClickHouse, 2 Proxist nodes
      (--demo: and the demo publisher); -d returns once every service is healthy.
      Engine: docker compose where a Docker engine runs, else Podman (PX_COMPOSE_ENGINE
      picks one). Images: official (Docker's default) or local (Podman's default: built
      from infra/local on a Debian base made here, no image registry needed).
  proxist compose down [-v]
      removes the containers and the network; -v also the volumes (NATS and ClickHouse data)
  proxist compose secrets
      generates ClickHouse's password, the NATS identity and the stack's TLS certificates into
      infra/secrets/ (up does it too): run it before a plain
      \`docker compose up\``;

const root = fileURLToPath(new URL("../..", import.meta.url));

async function main(argv: string[]): Promise<void> {
  const [verb, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      demo: { type: "boolean", default: false },
      detach: { type: "boolean", short: "d", default: false },
      volumes: { type: "boolean", short: "v", default: false },
      images: { type: "string" },
    },
  });
  const images = values.images;
  if (images !== undefined && images !== "local" && images !== "official") throw new ComposeError(`--images must be local or official, got "${images}"`);
  const opts: ComposeOptions = { root, ...(images === "local" || images === "official" ? { images } : {}) };
  switch (verb) {
    case "up":
      return up(opts, values.demo, values.detach);
    case "down":
      return down(opts, values.volumes);
    case "secrets": {
      const s = ensureComposeSecrets(root);
      console.log(`${s.created ? "generated" : "kept"} ${s.passwordFile} (ClickHouse user default); clients: PX_CLICKHOUSE_PASSWORD_FILE=${s.passwordFile}`);
      const n = await ensureComposeNatsAuth(root);
      console.log(`${n.created ? "generated" : "kept"} the NATS identity; pxctl and other clients on this machine: PX_NATS_CREDS=${n.adminCreds}`);
      const t = ensureComposeTls(root);
      console.log(`${t.created ? "generated" : "kept"} the stack's TLS; clients on this machine trust PX_TLS_CA=${t.ca} (NATS tls://127.0.0.1:4222, gRPC/Flight grpc+tls://, HTTPS)`);
      return;
    }
    default:
      throw new ComposeError(verb ? `unknown compose command "${verb}"` : "missing compose command (up, down or secrets)");
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    const usage = e instanceof ComposeError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS");
    console.error(`proxist compose: ${(e as Error).message}${usage && /command|must be|unknown option/i.test((e as Error).message) ? `\n${USAGE}` : ""}`);
    process.exit(usage ? 2 : 1);
  },
);
