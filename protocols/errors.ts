// Typed protocol errors. Messages name the input, the rule and the fix.

export class UnsupportedVersionError extends Error {
  override readonly name = "UnsupportedVersionError";
  readonly _tag = "UnsupportedVersionError";
  constructor(what: string, got: number, supported: readonly number[]) {
    super(`${what} has version ${got}; this reader supports ${supported.join(", ")}. Upgrade the reader or write version ${supported.at(-1)}`);
  }
}

export class CorruptMessageError extends Error {
  override readonly name = "CorruptMessageError";
  readonly _tag = "CorruptMessageError";
  constructor(what: string, detail: string, options?: { cause?: unknown }) {
    super(`${what} cannot be decoded: ${detail}`, options);
  }
}
