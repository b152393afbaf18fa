// `./proxist compose`: the docker-compose.yml cluster on Docker or Podman.
export { up, down, findEngine, composeFiles, startLevels, PROJECT, DEMO_SERVICE } from "./stack.js";
export type { ComposeOptions, Engine } from "./stack.js";
export { ComposeError, BASE_IMAGE } from "./podman.js";
export { ensureComposeSecrets, ensureComposeNatsAuth, ensureComposeTls, natsTlsConf, TLS_DIR, TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE, TLS_ROUTE_CERT_FILE, TLS_ROUTE_KEY_FILE, TLS_HOSTS, NATS_TLS_CONF, clickhouseUsersXml, SECRETS_DIR, CLICKHOUSE_PASSWORD_FILE, CLICKHOUSE_USERS_FILE, NATS_AUTH_DIR, NATS_AUTH_CONF, NATS_ROUTES_CONF, NATS_ROUTE_PASSWORD_FILE, natsRoutesConf, NATS_SERVICE_CREDS, NATS_DEMO_CREDS } from "./secrets.js";
