// pxctl exit statuses, so scripts can tell a typo from an outage from a lost race.
import { TaggedError } from "../../protocols/tagged.js";
export const EXIT = {
  ok: 0,
  /** Anything else (a node failed the request, unexpected error). */
  other: 1,
  /** Bad command line or invalid input file (nothing was sent). */
  usage: 2,
  /** NATS or every Proxist node is unreachable. */
  unreachable: 3,
  /** A concurrent change won: read the current state and retry. */
  conflict: 4,
  /** The named tenant, table, shard or node does not exist. */
  notFound: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure pxctl reports with `message` and exits with `code`. */
export class CliError extends TaggedError("CliError") {
  constructor(
    readonly code: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
