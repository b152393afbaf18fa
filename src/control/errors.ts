// The error a control verb answers with: a code pxctl turns into an exit
// status, and a message naming the input, the rule and the fix.
import { TaggedError } from "../../protocols/tagged.js";

export type ControlErrorCode = "INVALID_ARGUMENT" | "NOT_FOUND" | "CONFLICT" | "UNSUPPORTED" | "UNAVAILABLE" | "INTERNAL";

export class ControlError extends TaggedError("ControlError") {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
