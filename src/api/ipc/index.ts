// Untrusted Arrow IPC handling for the API: checked framing, metadata and
// limits, and the compression codecs the Arrow reader may use.
export { IpcError } from "./errors.js";
export { IpcStreamChecker, checkIngestPayload } from "./checker.js";
export type { PayloadSummary } from "./checker.js";
export { checkDecompressedSize, decompressPayload, registerZstd } from "./compression.js";
export { encapsulate, joinIpcStream, splitIpcStream, splitOwnIpcStream } from "./framing.js";
export type { CheckedMessage, IpcMessage } from "./framing.js";
export { readMessageInfo } from "./message.js";
export type { BatchInfo, MessageInfo } from "./message.js";
