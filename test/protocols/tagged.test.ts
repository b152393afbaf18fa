// The tagged error base: `_tag` and `name` come from the one tag, the message
// and `cause` pass through, and instanceof tells the classes apart.
import { describe, expect, it } from "vitest";
import { TaggedError } from "../../protocols/tagged.js";
import { CorruptMessageError, UnsupportedVersionError } from "../../protocols/errors.js";
import { AuthError, TokenNotFoundError } from "../../src/auth/errors.js";

describe("protocols - tagged errors", () => {
  it("tagged error - sets _tag and name from the tag, keeps message and cause", () => {
    class Boom extends TaggedError("Boom") {}
    const cause = new Error("root");
    const e = new Boom("it broke", { cause });
    expect(e).toBeInstanceOf(Error);
    expect(e).toBeInstanceOf(Boom);
    expect(e._tag).toBe("Boom");
    expect(e.name).toBe("Boom");
    expect(e.message).toBe("it broke");
    expect(e.cause).toBe(cause);
    expect(String(e)).toBe("Boom: it broke");
    expect(Object.keys(e)).toContain("_tag");
  });

  it("tagged error - existing classes keep their tags, messages and fields", () => {
    const v = new UnsupportedVersionError("WAL record", 9, [1, 2]);
    expect([v._tag, v.name]).toEqual(["UnsupportedVersionError", "UnsupportedVersionError"]);
    expect(v.message).toBe("WAL record has version 9; this reader supports 1, 2. Upgrade the reader or write version 2");
    const c = new CorruptMessageError("heartbeat", "truncated", { cause: 1 });
    expect([c._tag, c.cause]).toEqual(["CorruptMessageError", 1]);
    const a = new AuthError("PERMISSION_DENIED", "no");
    expect([a._tag, a.name, a.code]).toEqual(["AuthError", "AuthError", "PERMISSION_DENIED"]);
    expect(new TokenNotFoundError("token t1 does not exist")).not.toBeInstanceOf(AuthError);
  });
});
