// Malformed Arrow IPC from a client. Always INVALID_ARGUMENT: the bytes will
// not become valid by sending them again.

export class IpcError extends Error {
  override readonly name = "IpcError";
  readonly _tag = "IpcError";
  readonly code = "INVALID_ARGUMENT";
}
