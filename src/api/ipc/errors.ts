// Malformed Arrow IPC from a client. Always INVALID_ARGUMENT: the bytes will
// not become valid by sending them again.
import { TaggedError } from "../../../protocols/tagged.js";

export class IpcError extends TaggedError("IpcError") {
  readonly code = "INVALID_ARGUMENT";
}
