// ClickHouse credentials of a node from its environment: the user
// (PX_CLICKHOUSE_USER, default `default`) and the password read from a file
// (PX_CLICKHOUSE_PASSWORD_FILE, a compose secret), never from a variable or a
// URL, so it shows in no `ps`, `docker inspect` or log line.
import { readFileSync } from "node:fs";
import { ENV } from "../config/defaults.js";

export interface ClickhouseAuth {
  readonly user: string;
  readonly password: string;
}

/** undefined when neither variable is set (ClickHouse's `default` user without a password). */
export function clickhouseAuthFromEnv(env: Readonly<Record<string, string | undefined>>): ClickhouseAuth | undefined {
  const user = env[ENV.clickhouseUser];
  const file = env[ENV.clickhousePasswordFile];
  if (user === undefined && file === undefined) return undefined;
  if (file === undefined) return { user: user!, password: "" };
  let password: string;
  try {
    password = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${ENV.clickhousePasswordFile}=${file}: cannot read the ClickHouse password (${(e as Error).message}); mount the secret there (docker-compose.yml: secrets) or unset the variable`, { cause: e });
  }
  // One trailing newline is the file's, not the password's (echo writes one).
  return { user: user ?? "default", password: password.replace(/\r?\n$/, "") };
}
