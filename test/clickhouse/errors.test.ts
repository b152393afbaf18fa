import { describe, expect, it } from "vitest";
import { ClickhouseQueryError, ClickhouseUnavailableError, classifyClickhouseError, parseServerException } from "../../src/clickhouse/index.js";

describe("errors - classification", () => {
  it("errors - parses 18.16 exception text", () => {
    expect(parseServerException("Code: 81, e.displayText() = DB::Exception: Database nope doesn't exist, e.what() = DB::Exception\n")).toEqual({
      code: 81,
      message: "Database nope doesn't exist",
    });
  });

  it("errors - parses current-release exception text", () => {
    expect(parseServerException("Code: 60. DB::Exception: Table px_a.t does not exist. (UNKNOWN_TABLE) (version 24.3.2.23 (official build))")).toEqual({
      code: 60,
      message: "Table px_a.t does not exist. (UNKNOWN_TABLE)",
    });
  });

  it("errors - connection refused is unavailable and certainly not landed", () => {
    const err = classifyClickhouseError(Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }), "http://127.0.0.1:1");
    expect(err).toBeInstanceOf(ClickhouseUnavailableError);
    expect(err).toMatchObject({ code: "ECONNREFUSED", mayHaveLanded: false, _tag: "ClickhouseUnavailableError" });
  });

  it("errors - a reset or timeout is unavailable and may have landed", () => {
    for (const raw of [Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" }), new Error("socket hang up"), Object.assign(new Error("t"), { code: "ETIMEDOUT" })]) {
      expect(classifyClickhouseError(raw, "http://x")).toMatchObject({ _tag: "ClickhouseUnavailableError", mayHaveLanded: true });
    }
  });

  it("errors - a library error carrying server text becomes a query error with the code", () => {
    const err = classifyClickhouseError(new Error("Code: 252, e.displayText() = DB::Exception: Too many parts (300)"), "http://x", "INSERT INTO t");
    expect(err).toBeInstanceOf(ClickhouseQueryError);
    expect(err).toMatchObject({ code: 252, retryable: true });
    expect(new ClickhouseQueryError(60, "Table t doesn't exist", 404, "SELECT 1").retryable).toBe(false);
  });

  it("errors - programming errors pass through unchanged", () => {
    const e = new TypeError("x is not a function");
    expect(classifyClickhouseError(e, "http://x")).toBe(e);
  });
});
