import { describe, expect, it } from "vitest";
import { ClickhouseBinaryNotFoundError, clickhouseConfigXml, findClickhouseBinary } from "../../src/runtime/servers/clickhouse.js";

describe("clickhouse server launcher - binary and config", () => {
  it("server - an explicit PX_CLICKHOUSE_SERVER that is not executable is refused with the fix", () => {
    const find = () => findClickhouseBinary({ PX_CLICKHOUSE_SERVER: "/nonexistent/clickhouse-server", PATH: "/nonexistent" });
    expect(find).toThrow(ClickhouseBinaryNotFoundError);
    expect(find).toThrow(/PX_CLICKHOUSE_SERVER=\/nonexistent\/clickhouse-server is not an executable file/);
  });

  it("server - the config uses the <yandex> root, loopback only, and keeps every path under the given directory", () => {
    const dir = "/tmp/px-ch-x";
    const xml = clickhouseConfigXml(
      {
        dir,
        dataDir: `${dir}/data`,
        tmpDir: `${dir}/tmp`,
        userFilesDir: `${dir}/user_files`,
        formatSchemasDir: `${dir}/format_schemas`,
        logDir: `${dir}/log`,
        logFile: `${dir}/log/s.log`,
        errorLogFile: `${dir}/log/e.log`,
        stdoutFile: `${dir}/log/o.log`,
        configFile: `${dir}/config.xml`,
        usersFile: `${dir}/users.xml`,
      },
      { http: 18123, tcp: 19000, interserver: undefined },
      "information",
    );
    expect(xml).toMatch(/^<\?xml version="1.0"\?>\n<yandex>/);
    expect(xml).toContain("<listen_host>127.0.0.1</listen_host>");
    expect(xml).toContain("<http_port>18123</http_port>");
    expect(xml).toContain("<tcp_port>19000</tcp_port>");
    expect(xml).not.toContain("interserver");
    for (const path of xml.match(/<(?:path|tmp_path|user_files_path|format_schema_path|log|errorlog|users_config)>([^<]*)</g) ?? []) {
      expect(path).toContain(dir);
    }
  });
});
