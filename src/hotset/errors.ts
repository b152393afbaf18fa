// Errors of the hot-set column store. They are programming or data errors (a
// batch that does not match the table, a snapshot of another table), never
// transient: retrying the same call fails the same way.
import { TaggedError } from "../../protocols/tagged.js";

/** A batch, snapshot or argument the hot set cannot accept; `message` names the input, the rule and the fix. */
export class HotSetError extends TaggedError("HotSetError") {}
