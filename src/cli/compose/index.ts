// `./proxist compose`: the docker-compose.yml cluster on Docker or Podman.
export { up, down, findEngine, composeFiles, startLevels, PROJECT, DEMO_SERVICE } from "./stack.js";
export type { ComposeOptions, Engine } from "./stack.js";
export { ComposeError, BASE_IMAGE } from "./podman.js";
export { ensureComposeSecrets, clickhouseUsersXml, SECRETS_DIR, CLICKHOUSE_PASSWORD_FILE, CLICKHOUSE_USERS_FILE } from "./secrets.js";
