// Typed auth errors. Messages tell the caller what to do and never contain a
// token or any part of its secret.

export type AuthErrorCode = "UNAUTHENTICATED" | "PERMISSION_DENIED";

export class AuthError extends Error {
  override readonly name = "AuthError";
  readonly _tag = "AuthError";
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An admin operation named a token id that does not exist. */
export class TokenNotFoundError extends Error {
  override readonly name = "TokenNotFoundError";
  readonly _tag = "TokenNotFoundError";
}

/** createToken was given options that break a rule. */
export class TokenOptionsError extends Error {
  override readonly name = "TokenOptionsError";
  readonly _tag = "TokenOptionsError";
}

/** The token store could not be read; the call may succeed if retried. */
export class TokenStoreUnavailableError extends Error {
  override readonly name = "TokenStoreUnavailableError";
  readonly _tag = "TokenStoreUnavailableError";
}
