import { describe, expect, it } from "vitest";
import { capabilitiesOf, parseClickhouseVersion, syncInsertSettings } from "../../src/clickhouse/index.js";

describe("version - parsing and capabilities", () => {
  it("version - parses the forms servers report", () => {
    expect(parseClickhouseVersion("18.16.1")).toMatchObject({ major: 18, minor: 16, patch: 1 });
    expect(parseClickhouseVersion("24.8.4.13")).toMatchObject({ major: 24, minor: 8, patch: 4 });
    expect(parseClickhouseVersion("25.3.1.2703 (official build)\n")).toMatchObject({ major: 25, minor: 3 });
    expect(() => parseClickhouseVersion("Ok.")).toThrow(/not major.minor/);
  });

  it("version - 18.16 has none of the newer features, a current release has all", () => {
    expect(capabilitiesOf({ major: 18, minor: 16 })).toEqual({
      asofJoin: false,
      queryParameters: false,
      insertDeduplicationToken: false,
      summaryHeader: false,
      asyncInsertSetting: false,
    });
    expect(capabilitiesOf({ major: 24, minor: 3 })).toEqual({
      asofJoin: true,
      queryParameters: true,
      insertDeduplicationToken: true,
      summaryHeader: true,
      asyncInsertSetting: true,
    });
  });

  it("version - each feature switches on at the release that brought it", () => {
    expect(capabilitiesOf({ major: 19, minor: 13 }).asofJoin).toBe(false);
    expect(capabilitiesOf({ major: 19, minor: 14 }).asofJoin).toBe(true);
    expect(capabilitiesOf({ major: 19, minor: 10 }).queryParameters).toBe(false);
    expect(capabilitiesOf({ major: 19, minor: 11 }).queryParameters).toBe(true);
    expect(capabilitiesOf({ major: 22, minor: 1 }).insertDeduplicationToken).toBe(false);
    expect(capabilitiesOf({ major: 22, minor: 2 }).insertDeduplicationToken).toBe(true);
  });

  it("version - INSERTs turn async inserts off only where the setting exists", () => {
    expect(syncInsertSettings(capabilitiesOf({ major: 18, minor: 16 }))).toEqual({});
    expect(syncInsertSettings(capabilitiesOf({ major: 26, minor: 3 }))).toEqual({ async_insert: 0 });
  });
});
