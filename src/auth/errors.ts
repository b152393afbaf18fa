// Typed auth errors. Messages tell the caller what to do and never contain a
// token or any part of its secret.
import { TaggedError } from "../../protocols/tagged.js";

export type AuthErrorCode = "UNAUTHENTICATED" | "PERMISSION_DENIED";

export class AuthError extends TaggedError("AuthError") {
  constructor(
    readonly code: AuthErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** An admin operation named a token id that does not exist. */
export class TokenNotFoundError extends TaggedError("TokenNotFoundError") {}

/** createToken was given options that break a rule. */
export class TokenOptionsError extends TaggedError("TokenOptionsError") {}

/** The token store could not be read; the call may succeed if retried. */
export class TokenStoreUnavailableError extends TaggedError("TokenStoreUnavailableError") {}

/** NATS credentials were asked for with options that break a rule; `option` names which. */
export class CredsOptionsError extends TaggedError("CredsOptionsError") {
  constructor(
    readonly option: "tenant" | "tables",
    message: string,
  ) {
    super(message);
  }
}
