// Public surface of src/auth: tenant-scoped tokens with roles, stored as salted
// hashes in KV px_tokens, verified with a short revocation-aware cache.
export { AuthError, CredsOptionsError, TokenNotFoundError, TokenOptionsError, TokenStoreUnavailableError } from "./errors.js";
export type { AuthErrorCode } from "./errors.js";
export { ROLES, allows, isRole, roleFor } from "./roles.js";
export type { Action, Role } from "./roles.js";
export { TOKEN_PREFIX, formatToken, parseToken, tokenIdOf } from "./token.js";
export type { Principal, TokenRecord } from "./token.js";
export { checkedTables, createToken, getToken, listTokens, openTokenBucket, revokeToken } from "./store.js";
export type { CreateTokenOptions, TokenInfo } from "./store.js";
export { TokenVerifier, kvTokenSource } from "./verifier.js";
export type { TokenSource, VerifierOptions } from "./verifier.js";
export { accountJwt, accountPublicKey, credsHasRolePermissions, inboxPrefixOfCreds, mintSystemUser, mintUser, newCredId, newNatsIdentity, operatorJwt, revocationsOf, systemAccountJwt, systemAccountPublicKey } from "./natsjwt.js";
export type { MintOptions, MintedCreds, NatsIdentity } from "./natsjwt.js";
export { getCreds, listCreds, markCredsRevoked, openCredsBucket, recordCreds } from "./credstore.js";
export type { CredsInfo } from "./credstore.js";
