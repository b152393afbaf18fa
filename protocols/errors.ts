// Typed protocol errors. Messages name the input, the rule and the fix.
import { TaggedError } from "./tagged.js";

export class UnsupportedVersionError extends TaggedError("UnsupportedVersionError") {
  constructor(what: string, got: number, supported: readonly number[]) {
    super(`${what} has version ${got}; this reader supports ${supported.join(", ")}. Upgrade the reader or write version ${supported.at(-1)}`);
  }
}

export class CorruptMessageError extends TaggedError("CorruptMessageError") {
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super(`${what} cannot be decoded: ${detail}`, options);
  }
}
