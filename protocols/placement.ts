// Per-shard placement overrides: the `move` control request (px.ctl.move,
// JSON body in a ControlRequest) asks the leader to place one shard on another
// node; the override is kept in KV px_placement (key `<tenant>.<table>.<bucket>`)
// until it is cleared or its target node dies.

/** Control verb of the request (subject controlSubject(MOVE_VERB)). */
export const MOVE_VERB = "move";

/** Who asked: the operator's override replaces any other; lag remediation moves a shard once (until cleared). */
export type MoveRequester = "operator" | "remediation";

export interface MoveShardRequest {
  /** `<tenant>.<table>` or `<table>` (when one tenant has it). */
  readonly table: string;
  readonly bucket: number;
  /** Move it away from this node; default its current owner. Refused when the shard is elsewhere already. */
  readonly from?: string;
  /** The node to move it to; default the live node other than `from` that owns the fewest shards. */
  readonly to?: string;
  /** Drop the shard's override instead: it goes back to where placement puts it. */
  readonly clear?: boolean;
  readonly by?: MoveRequester;
}

export interface MoveShardReply {
  /** `<tenant>.<table>.<bucket>`. */
  readonly shard: string;
  /** Its owner when asked ("" when unassigned). */
  readonly from: string;
  /** Where the leader will place it ("" after a clear: wherever placement puts it). */
  readonly to: string;
  /** KV revision of the override in px_placement (0 after a clear). */
  readonly revision: number;
  /** False when nothing was changed (clearing a shard that has no override). */
  readonly changed: boolean;
  readonly message: string;
}

/** The value of a px_placement key. */
export interface PlacementOverride {
  /** The node the shard is to live on. */
  readonly node: string;
  /** Its owner when the move was asked. */
  readonly from: string;
  readonly by: MoveRequester;
  /** Why (shown by pxctl and in the event log). */
  readonly reason: string;
  /** The asking node's clock (display only). */
  readonly requestedAtMs: number;
}

/** A move request that is not well formed: names the field, the rule and the fix. */
export function parseMoveShardRequest(body: unknown): MoveShardRequest {
  const b = (typeof body === "object" && body !== null ? body : {}) as Record<string, unknown>;
  if (typeof b.table !== "string" || !/^([a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*$/.test(b.table)) {
    throw new Error(`move: table must be <table> or <tenant>.<table> (lowercase letters, digits, _), got ${JSON.stringify(b.table)}`);
  }
  if (typeof b.bucket !== "number" || !Number.isInteger(b.bucket) || b.bucket < 0) throw new Error(`move: bucket must be a shard number (0, 1, ...), got ${JSON.stringify(b.bucket)}`);
  for (const k of ["from", "to"] as const) {
    if (b[k] !== undefined && (typeof b[k] !== "string" || b[k] === "")) throw new Error(`move: ${k} must be a node id (pxctl get nodes lists them), got ${JSON.stringify(b[k])}`);
  }
  if (b.clear !== undefined && typeof b.clear !== "boolean") throw new Error(`move: clear must be true or false, got ${JSON.stringify(b.clear)}`);
  if (b.clear === true && b.to !== undefined) throw new Error(`move: clear drops the shard's override; it takes no target (got to ${JSON.stringify(b.to)})`);
  if (b.by !== undefined && b.by !== "operator" && b.by !== "remediation") throw new Error(`move: by must be operator or remediation, got ${JSON.stringify(b.by)}`);
  return {
    table: b.table,
    bucket: b.bucket,
    ...(b.from === undefined ? {} : { from: b.from as string }),
    ...(b.to === undefined ? {} : { to: b.to as string }),
    ...(b.clear === true ? { clear: true } : {}),
    ...(b.by === undefined ? {} : { by: b.by }),
  };
}
