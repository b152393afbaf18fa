// docker-compose.yml against the code, without running it (compose.int.test.ts
// runs it on Podman): it parses, everything it builds or mounts exists, and its
// ports and environment agree with src/config/defaults.ts and the code that reads them.
import { createHash } from "node:crypto";
import { X509Certificate } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { DEFAULT_PORTS, ENV } from "../../src/config/defaults.js";
import {
  CLICKHOUSE_PASSWORD_FILE,
  CLICKHOUSE_USERS_FILE,
  NATS_AUTH_CONF,
  NATS_ROUTES_CONF,
  NATS_ROUTE_PASSWORD_FILE,
  natsRoutesConf,
  NATS_AUTH_DIR,
  NATS_DEMO_CREDS,
  NATS_SERVICE_CREDS,
  SECRETS_DIR,
  ensureComposeNatsAuth,
  ensureComposeSecrets,
  ensureComposeTls,
  NATS_TLS_CONF,
  TLS_CA_FILE,
  TLS_CERT_FILE,
  TLS_ROUTE_CERT_FILE,
  TLS_ROUTE_KEY_FILE,
  TLS_HOSTS,
  TLS_KEY_FILE,
} from "../../src/cli/compose/index.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
const read = (p: string): string => readFileSync(join(root, p), "utf8");

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, unknown>;
}
const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services;
const proxistNodes = ["proxist-1", "proxist-2"];
/** Read by Node.js itself, not by Proxist: the healthcheck's fetch trusts the stack's CA through it. */
const NODE_OWN = new Set(["NODE_EXTRA_CA_CERTS"]);
const natsServers = ["nats-1", "nats-2", "nats-3"];

/** "8081:8080" -> { host: 8081, container: 8080 } */
/** "127.0.0.1:8081:8080" -> { address: "127.0.0.1", host: 8081, container: 8080 } */
const portPair = (p: string): { address: string | undefined; host: number; container: number } => {
  const parts = p.split(":");
  const address = parts.length === 3 ? parts.shift() : undefined;
  const [host, container] = parts.map(Number);
  return { address, host: host!, container: container ?? host! };
};

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const rel = join(dir, name);
    return statSync(join(root, rel)).isDirectory() ? sources(rel) : rel.endsWith(".ts") ? [rel] : [];
  });
}

describe("docker-compose.yml", () => {
  it("compose - has the NATS cluster, ClickHouse, two Proxist nodes and the demo publisher", () => {
    expect(Object.keys(services).sort()).toEqual(["clickhouse", "demo", ...natsServers, ...proxistNodes].sort());
  });

  it("compose - every service has a pinned image or a build whose Dockerfile exists", () => {
    for (const [name, s] of Object.entries(services)) {
      if (s.build) {
        const build = typeof s.build === "string" ? { context: s.build } : s.build;
        expect(existsSync(join(root, build.context)), `${name}: build context ${build.context}`).toBe(true);
        expect(existsSync(join(root, build.context, build.dockerfile ?? "Dockerfile")), `${name}: dockerfile`).toBe(true);
      } else {
        expect(s.image, `${name}: needs an image or a build`).toMatch(/^[a-z0-9./_-]+:[0-9][\w.-]*$/); // a version tag, not latest
      }
    }
  });

  it("compose - every bind-mounted file exists (or is a secret ./proxist compose generates) and named volumes are declared", () => {
    const generated = new Set([CLICKHOUSE_PASSWORD_FILE, CLICKHOUSE_USERS_FILE, NATS_AUTH_CONF, NATS_ROUTES_CONF, NATS_TLS_CONF, TLS_CERT_FILE, TLS_KEY_FILE, TLS_ROUTE_CERT_FILE, TLS_ROUTE_KEY_FILE, TLS_CA_FILE].map((f) => `./${SECRETS_DIR}/${f}`));
    for (const [name, s] of Object.entries(services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(":")[0]!;
        if (generated.has(src)) continue;
        if (src.startsWith(".")) expect(existsSync(join(root, src)), `${name}: ${src}`).toBe(true);
        else expect(Object.keys(compose.volumes ?? {}), `${name}: volume ${src}`).toContain(src);
      }
    }
  });

  it("compose - ClickHouse has a generated password: its users file holds the hash, the nodes read the password from a secret file", () => {
    const tmp = mkdtempSync(join(tmpdir(), "px-compose-"));
    try {
      const made = ensureComposeSecrets(tmp);
      expect(made.created).toBe(true);
      expect(statSync(made.dir).mode & 0o777).toBe(0o700);
      const password = readFileSync(made.passwordFile, "utf8").trim();
      expect(password.length).toBeGreaterThanOrEqual(32);
      const xml = readFileSync(join(made.dir, CLICKHOUSE_USERS_FILE), "utf8");
      expect(xml).toContain(createHash("sha256").update(password).digest("hex"));
      expect(xml).not.toContain(password);
      expect(ensureComposeSecrets(tmp).created, "kept on the next run").toBe(false);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    const secrets = (parse(read("docker-compose.yml")) as { secrets?: Record<string, { file: string }> }).secrets ?? {};
    expect(secrets.clickhouse_password?.file).toBe(`./${SECRETS_DIR}/${CLICKHOUSE_PASSWORD_FILE}`);
    expect(services.clickhouse!.volumes).toContain(`./${SECRETS_DIR}/${CLICKHOUSE_USERS_FILE}:/etc/clickhouse-server/users.d/password.xml:ro`);
    expect(services.clickhouse!.environment?.CLICKHOUSE_PASSWORD, "no password in the environment").toBeUndefined();
    for (const name of proxistNodes) {
      const s = services[name] as Service & { secrets?: string[] };
      expect(s.secrets).toEqual(["clickhouse_password", "nats_service_creds", "tls_ca", "tls_server_cert", "tls_server_key"]);
      expect(s.environment?.[ENV.clickhousePasswordFile]).toBe("/run/secrets/clickhouse_password");
      expect(s.environment?.[ENV.grpcHost], "plaintext gRPC binds loopback unless asked; a container must ask").toBe("0.0.0.0");
    }
    expect(read(".gitignore")).toContain(`${SECRETS_DIR}/`);
  });

  it("compose - NATS is locked: every server includes the generated operator config, every client service connects with credentials", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "px-compose-"));
    try {
      const made = await ensureComposeNatsAuth(tmp);
      expect(made.created).toBe(true);
      const dir = join(tmp, SECRETS_DIR);
      expect(statSync(join(dir, NATS_AUTH_DIR)).mode & 0o777).toBe(0o700);
      expect(statSync(made.adminCreds).mode & 0o777).toBe(0o600);
      const conf = readFileSync(join(dir, NATS_AUTH_CONF), "utf8");
      expect(conf).toMatch(/^operator: "ey/m);
      expect(conf).toMatch(/type: full/);
      expect(conf).toMatch(/dir: "\/data\/jwt"/);
      expect(readFileSync(join(dir, NATS_SERVICE_CREDS), "utf8")).toMatch(/BEGIN NATS USER JWT/);
      expect(readFileSync(join(dir, NATS_DEMO_CREDS), "utf8")).toBe(readFileSync(join(dir, NATS_SERVICE_CREDS), "utf8"));
      const routes = readFileSync(join(dir, NATS_ROUTES_CONF), "utf8");
      const pw = readFileSync(join(dir, NATS_ROUTE_PASSWORD_FILE), "utf8").trim();
      expect(pw).toMatch(/^[0-9a-f]{48}$/);
      expect(statSync(join(dir, NATS_ROUTE_PASSWORD_FILE)).mode & 0o777).toBe(0o600);
      // Routes authenticate: the cluster accepts only members with the password, and each dials the others with it.
      expect(routes).toContain(`authorization { user: route, password: "${pw}"`);
      for (const n of ["nats-1", "nats-2", "nats-3"]) expect(routes).toContain(`nats://route:${pw}@${n}:6222`);
      expect((await ensureComposeNatsAuth(tmp)).created, "kept on the next run").toBe(false);
      expect(readFileSync(join(dir, NATS_ROUTE_PASSWORD_FILE), "utf8").trim(), "the route password is kept").toBe(pw);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    expect(read("infra/nats/nats.conf")).toMatch(/^include \.\/auth\.conf$/m);
    expect(read("infra/nats/nats.conf")).toMatch(/^include \.\/routes\.conf$/m);
    expect(read("infra/nats/nats.conf")).not.toMatch(/^cluster \{/m);
    for (const n of ["nats-1", "nats-2", "nats-3"]) expect(services[n]!.volumes, n).toContain(`./${SECRETS_DIR}/${NATS_AUTH_CONF}:/etc/nats/auth.conf:ro`);
    for (const n of ["nats-1", "nats-2", "nats-3"]) expect(services[n]!.volumes, n).toContain(`./${SECRETS_DIR}/${NATS_ROUTES_CONF}:/etc/nats/routes.conf:ro`);
    const secrets = (parse(read("docker-compose.yml")) as { secrets?: Record<string, { file: string }> }).secrets ?? {};
    expect(secrets.nats_service_creds?.file).toBe(`./${SECRETS_DIR}/${NATS_SERVICE_CREDS}`);
    expect(secrets.nats_demo_creds?.file).toBe(`./${SECRETS_DIR}/${NATS_DEMO_CREDS}`);
    for (const name of [...proxistNodes, "demo"]) {
      expect(services[name]!.environment?.PX_NATS_CREDS, name).toBe(name === "demo" ? "/run/secrets/nats_demo_creds" : "/run/secrets/nats_service_creds");
    }
  });

  it("compose - TLS is on: NATS requires it, the nodes reach NATS over tls:// trusting the stack's CA and serve gRPC/Flight and HTTPS with its certificate, valid for every service name", () => {
    const tmp = mkdtempSync(join(tmpdir(), "px-compose-"));
    try {
      const made = ensureComposeTls(tmp);
      expect(made.created).toBe(true);
      const dir = join(tmp, SECRETS_DIR);
      const cert = new X509Certificate(readFileSync(join(dir, TLS_CERT_FILE)));
      const ca = new X509Certificate(readFileSync(made.ca));
      expect(cert.verify(ca.publicKey), "signed by the stack's CA").toBe(true);
      for (const h of [...TLS_HOSTS, "localhost"]) expect(cert.checkHost(h), h).toBe(h);
      // The route certificate: same CA, every member's name, usable as server and as client (route TLS is mutual).
      const route = new X509Certificate(readFileSync(join(dir, TLS_ROUTE_CERT_FILE)));
      expect(route.verify(ca.publicKey)).toBe(true);
      for (const h of ["nats-1", "nats-2", "nats-3"]) expect(route.checkHost(h), h).toBe(h);
      expect(route.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
      expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
      // The key is readable by the containers' users (copies, 0644) inside the 0700 secrets directory; the original stays 0600.
      expect(statSync(join(dir, TLS_KEY_FILE)).mode & 0o777).toBe(0o644);
      expect(statSync(join(dir, "tls", "server.key")).mode & 0o777).toBe(0o600);
      expect(readFileSync(join(dir, NATS_TLS_CONF), "utf8")).toMatch(/^tls \{\n {2}cert_file: "\/etc\/nats\/tls\/server\.crt"\n {2}key_file: "\/etc\/nats\/tls\/server\.key"/m);
      const again = ensureComposeTls(tmp);
      expect(again.created, "kept on the next run").toBe(false);
      expect(readFileSync(again.ca, "utf8"), "the same CA: clients keep trusting it").toBe(readFileSync(made.ca, "utf8"));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    expect(read("infra/nats/nats.conf")).toMatch(/^include \.\/tls\.conf$/m);
    for (const n of natsServers) {
      expect(services[n]!.volumes, n).toEqual(expect.arrayContaining([`./${SECRETS_DIR}/${NATS_TLS_CONF}:/etc/nats/tls.conf:ro`, `./${SECRETS_DIR}/${TLS_CERT_FILE}:/etc/nats/tls/server.crt:ro`, `./${SECRETS_DIR}/${TLS_KEY_FILE}:/etc/nats/tls/server.key:ro`]));
    }
    const secrets = (parse(read("docker-compose.yml")) as { secrets?: Record<string, { file: string }> }).secrets ?? {};
    expect(secrets.tls_ca?.file).toBe(`./${SECRETS_DIR}/${TLS_CA_FILE}`);
    for (const name of [...proxistNodes, "demo"]) {
      const env = services[name]!.environment ?? {};
      expect(env[ENV.natsUrl], name).toMatch(/^tls:\/\/nats-\d:4222$/);
      expect(env.PX_TLS_CA, name).toBe("/run/secrets/tls_ca");
    }
    for (const name of proxistNodes) {
      const env = services[name]!.environment ?? {};
      expect([env.PX_TLS_CERT, env.PX_TLS_KEY, env.PX_HTTP_TLS, env.NODE_EXTRA_CA_CERTS], name).toEqual(["/run/secrets/tls_server_cert", "/run/secrets/tls_server_key", "1", "/run/secrets/tls_ca"]);
    }
  });

  it("compose - every published port binds the host's loopback", () => {
    for (const [name, s] of Object.entries(services)) for (const p of s.ports ?? []) expect(portPair(p).address, `${name}: ${p}`).toBe("127.0.0.1");
  });

  it("compose - host ports are unique", () => {
    const hostPorts = Object.values(services).flatMap((s) => (s.ports ?? []).map((p) => portPair(p).host));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it("compose - NATS listens where the code expects and routes name every member", () => {
    const conf = read("infra/nats/nats.conf");
    expect(conf).toContain(`listen: 0.0.0.0:${DEFAULT_PORTS.nats}`);
    expect(conf).toContain(`https: 0.0.0.0:${DEFAULT_PORTS.natsMonitor}`);
    expect(conf).toMatch(/jetstream\s*\{/);
    // The routes are in the generated include (they carry the route password): one per member of this file.
    const routes = natsRoutesConf("0".repeat(48));
    // Routes speak TLS with the route certificate, checked against the stack's CA.
    expect(routes).toMatch(/ {2}tls \{\n {4}cert_file: "\/etc\/nats\/tls\/route\.crt"\n {4}key_file: "\/etc\/nats\/tls\/route\.key"\n {4}ca_file: "\/etc\/nats\/tls\/ca\.crt"/);
    for (const n of natsServers) {
      expect(routes).toContain(`@${n}:6222`);
      expect(services[n]!.volumes, n).toEqual(expect.arrayContaining([`./${SECRETS_DIR}/${TLS_ROUTE_CERT_FILE}:/etc/nats/tls/route.crt:ro`, `./${SECRETS_DIR}/${TLS_ROUTE_KEY_FILE}:/etc/nats/tls/route.key:ro`, `./${SECRETS_DIR}/${TLS_CA_FILE}:/etc/nats/tls/ca.crt:ro`]));
      expect(services[n]!.environment?.NATS_SERVER_NAME).toBe(n);
    }
    expect(services["nats-1"]!.ports?.map(portPair)).toEqual([
      { address: "127.0.0.1", host: DEFAULT_PORTS.nats, container: DEFAULT_PORTS.nats },
      { address: "127.0.0.1", host: DEFAULT_PORTS.natsMonitor, container: DEFAULT_PORTS.natsMonitor },
    ]);
  });

  it("compose - ClickHouse exposes the default HTTP and native ports", () => {
    expect(services.clickhouse!.ports?.map((p) => portPair(p).container).sort()).toEqual([DEFAULT_PORTS.clickhouseHttp, DEFAULT_PORTS.clickhouseTcp].sort());
  });

  it("compose - Proxist nodes use the env names and ports of src/config/defaults.ts", () => {
    const known = new Set<string>(Object.values(ENV));
    for (const name of [...proxistNodes, "demo"]) {
      for (const key of Object.keys(services[name]!.environment ?? {})) if (!NODE_OWN.has(key)) expect(known, `${name}: ${key} is not in ENV`).toContain(key);
    }
    for (const name of proxistNodes) {
      const env = services[name]!.environment!;
      expect(Number(env[ENV.httpPort])).toBe(DEFAULT_PORTS.http);
      expect(Number(env[ENV.grpcPort])).toBe(DEFAULT_PORTS.grpc);
      expect(services[name]!.ports?.map((p) => portPair(p).container).sort()).toEqual([DEFAULT_PORTS.http, DEFAULT_PORTS.grpc].sort());
      const nats = new URL(env[ENV.natsUrl]!);
      expect(natsServers).toContain(nats.hostname);
      expect(Number(nats.port)).toBe(DEFAULT_PORTS.nats);
      const ch = new URL(env[ENV.clickhouseUrl]!);
      expect([ch.hostname, Number(ch.port)]).toEqual(["clickhouse", DEFAULT_PORTS.clickhouseHttp]);
      expect(env[ENV.nodeId]).toBe(name);
    }
    expect(new URL(services.demo!.environment![ENV.natsUrl]!).hostname).toMatch(/^nats-\d$/);
  });

  it("compose - every environment variable a Proxist service sets is read by the code", () => {
    const code = sources("src").filter((f) => !f.startsWith("src/config/")).map(read).join("\n");
    const keyOf = new Map(Object.entries(ENV).map(([k, v]) => [v as string, k]));
    const set = new Set([...proxistNodes, "demo"].flatMap((n) => Object.keys(services[n]!.environment ?? {})));
    const unread = [...set].filter((v) => !NODE_OWN.has(v) && !code.includes(`ENV.${keyOf.get(v)}`));
    expect(unread, "set in docker-compose.yml but never read via ENV.<name> in src/").toEqual([]);
  });

  it("compose - services run subcommands src/main.ts has, in the image the Dockerfile builds", () => {
    const main = read("src/main.ts");
    for (const name of [...proxistNodes, "demo"]) {
      const sub = services[name]!.command![0]!;
      expect(main, `src/main.ts has no "${sub}" command`).toContain(`case "${sub}":`);
    }
    const dockerfile = read("infra/Dockerfile");
    expect(dockerfile).toMatch(/ENTRYPOINT \["node", "--import", "tsx", "src\/main\.ts"\]/);
    for (const m of dockerfile.matchAll(/^COPY (\S+(?: \S+)*) \S+$/gm)) {
      // COPY --from=<stage> copies from a build stage, not from the repository.
      if (m[1]!.startsWith("--from=")) continue;
      for (const src of m[1]!.split(" ")) expect(existsSync(join(root, src)), `Dockerfile COPY ${src}`).toBe(true);
    }
    expect(dockerfile).toContain(`EXPOSE ${DEFAULT_PORTS.http} ${DEFAULT_PORTS.grpc}`);
    const pkg = JSON.parse(read("package.json")) as { dependencies: Record<string, string> };
    expect(Object.keys(pkg.dependencies), "the image installs production dependencies only").toContain("tsx");
  });

  it("compose - infra/local/compose.yml swaps only images: same services, nothing else changed", () => {
    const local = parse(read("infra/local/compose.yml"), { merge: true }) as { services: Record<string, Record<string, unknown>>; volumes?: unknown; networks?: unknown };
    expect(Object.keys(local.services).sort()).toEqual(Object.keys(services).sort());
    for (const [name, s] of Object.entries(local.services)) {
      expect(Object.keys(s).sort(), `${name}: the override may set image and build only`).toEqual(["build", "image"]);
      expect(s.image, name).toMatch(/^localhost\/proxist[\w-]*:local$/);
      const build = s.build as { context: string; dockerfile: string };
      expect(existsSync(join(root, build.context, build.dockerfile)), `${name}: ${build.dockerfile}`).toBe(true);
    }
    expect(local.volumes ?? local.networks).toBeUndefined();
  });

  it("compose - infra/README.md documents every environment variable", () => {
    const readme = read("infra/README.md");
    for (const v of Object.values(ENV)) expect(readme, v).toContain(`\`${v}\``);
  });
  it("compose - the observability overlay mounts files that exist, scrapes both nodes' HTTP port and adds no port twice", () => {
    const overlay = parse(read("infra/observability.compose.yml")) as { services: Record<string, Service> };
    for (const [name, s] of Object.entries(overlay.services)) {
      expect(s.image, name).toMatch(/^[a-z0-9./_-]+:v?[0-9][\w.-]*$/);
      // infra/secrets/ is made by ./proxist compose secrets, not in git.
      for (const v of s.volumes ?? []) if (!v.startsWith(`./${SECRETS_DIR}/`)) expect(existsSync(join(root, v.split(":")[0]!)), `${name}: ${v}`).toBe(true);
    }
    const prom = parse(read("infra/prometheus/prometheus.yml")) as { scrape_configs: { static_configs: { targets: string[] }[] }[] };
    const targets = prom.scrape_configs.flatMap((c) => c.static_configs.flatMap((t) => t.targets));
    expect(targets.sort()).toEqual(proxistNodes.map((n) => `${n}:${DEFAULT_PORTS.http}`).sort());
    const hostPorts = [...Object.values(services), ...Object.values(overlay.services)].flatMap((s) => (s.ports ?? []).map((p) => portPair(p).host));
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });
});
