// Every NATS subject, stream, KV bucket and object-store name Proxist uses is
// built here and nowhere else. Subjects are lowercase, broad to narrow.

export const walStream = (tenant: string): string => `PX_WAL_${tenant}`;
export const walSubject = (tenant: string, table: string, bucket: number): string =>
  `px.${tenant}.wal.${table}.${bucket}`;
export const walSubjectsOfTenant = (tenant: string): string => `px.${tenant}.wal.>`;
/** Every shard of one table (a feed reads them merged, in LSN order). */
export const walSubjectsOfTable = (tenant: string, table: string): string => `px.${tenant}.wal.${table}.*`;
/**
 * The WAL stream's anchor: one tiny record stored when the stream is created
 * and never purged (compaction purges shard subjects only). While it is there
 * the stream's first sequence cannot move past any reader; a first sequence
 * above what a reader expects means records were removed by someone else (a
 * hand purge, a limit), which readers treat as a gap.
 */
export const walAnchorSubject = (tenant: string): string => `px.${tenant}.walanchor`;

/** Request/reply: acked with the LSNs; plain publish: fire and forget. */
export const ingestSubject = (tenant: string, table: string): string => `px.${tenant}.ingest.${table}`;
export const INGEST_WILDCARD = "px.*.ingest.*";
/** Failures of fire-and-forget ingest are published here (JSON IngestError). */
export const ingestErrorSubject = (tenant: string, table: string): string => `px.${tenant}.ingest_errors.${table}`;

export const watermarkStream = (tenant: string): string => `PX_WM_${tenant}`;
export const watermarkSubject = (tenant: string, table: string, bucket: number): string =>
  `px.${tenant}.wm.${table}.${bucket}`;
export const watermarkSubjectsOfTenant = (tenant: string): string => `px.${tenant}.wm.>`;
export const watermarkSubjectsOfTable = (tenant: string, table: string): string => `px.${tenant}.wm.${table}.*`;

/**
 * Second subject tokens Proxist itself uses (px.ctl.*, px.events.*,
 * px.node.*). Tenants live at px.<tenant>.*, so a tenant with one of these
 * names would share the system's subject space: e.g. admin credentials, which
 * may publish px.ctl.>, could publish tenant ctl's ingest, and tenant node's
 * subjects would be those of a node named "ingest" or "wal".
 */
export const SYSTEM_SUBJECT_TOKENS = ["ctl", "events", "node"] as const;

export const controlSubject = (verb: string): string => `px.ctl.${verb}`;
/**
 * Operations requests (pxctl compact, snapshot): every node answers for the
 * shards it hosts (no queue group; the caller gathers the replies). One token
 * deeper than px.ctl.<verb>, so the control plane's px.ctl.* does not see them.
 */
export const opsSubject = (verb: string): string => `px.ctl.ops.${verb}`;

export const feedStream = (tenant: string): string => `PX_FEED_${tenant}`;
export const feedSubject = (tenant: string, name: string): string => `px.${tenant}.feed.${name}`;
/** Headers of a materialized feed message: the offset token it covers (resume after it) and its kind (update | snapshot). */
export const HDR_FEED_OFFSET = "Px-Feed-Offset";
export const HDR_FEED_KIND = "Px-Feed-Kind";
/** JSON [{table, bucket, lsn, persistedLsn, horizonMicros}]: per shard the LSN covered, P and H (-1: not known) when the message was published. */
export const HDR_FEED_SHARDS = "Px-Feed-Shards";
/** "<first>-<end>": set when one record's update is cut over several messages, the rows [first, end) of its output this message holds; "-<total>" ends the record. */
export const HDR_FEED_ROWS = "Px-Feed-Rows";

export const KV_CONFIG = "px_config";
export const KV_NODES = "px_nodes";
export const KV_ASSIGN = "px_assign";
export const KV_LEADER = "px_leader";
/** Per-shard placement overrides (`pxctl move shard`, lag remediation): key `<tenant>.<table>.<bucket>`, JSON PlacementOverride (protocols/placement.ts). */
export const KV_PLACEMENT = "px_placement";
export const KV_TOKENS = "px_tokens";
export const OBJ_SNAPSHOTS = "px_snapshots";

/**
 * A materialized feed's checkpoints in OBJ_SNAPSHOTS: `_feed.<tenant>.<name>.<fingerprint>.<LSN, 20 digits>`
 * (a leading "_": no tenant's shard snapshot name starts so). Named by LSN, so
 * a former owner of the feed that saves late adds an older one and never
 * replaces the newest.
 */
/** Every feed checkpoint object's name starts with this. */
export const FEED_CHECKPOINT_ROOT = "_feed.";
export const feedCheckpointPrefix = (tenant: string, name: string): string => `${FEED_CHECKPOINT_ROOT}${tenant}.${name}.`;
export const feedCheckpointObject = (tenant: string, name: string, fingerprint: string, lsn: number): string => `${feedCheckpointPrefix(tenant, name)}${fingerprint}.${String(lsn).padStart(20, "0")}`;
/** Per shard: the WAL sequence below which compaction purged the shard's subject (readers needing less stop on a gap). */
export const KV_COMPACTION = "px_compaction";
/** Compaction holds across nodes: `<node>.<tenant>.<table>` = the lowest LSN that node's subscriptions and feeds need (src/node/clusterholds.ts). */
export const KV_HOLDS = "px_holds";
/** Events the operations workflows record (compaction, snapshots on demand, gaps): `pxctl events`. */
export const EVENTS_STREAM = "PX_EVENTS";
export const eventSubject = (kind: string): string => `px.events.${kind}`;
export const EVENTS_WILDCARD = "px.events.>";
/** WAL records an operator skipped (`pxctl shard skip-record`): one key per shard, the JSON list of its skips (LSN and audit). */
export const KV_WAL_SKIPS = "px_walskips";
/** KV key of a shard in px_walskips (tenant.table.bucket). */
export const walSkipKey = (s: ShardAddress): string => `${s.tenant}.${s.table}.${s.bucket}`;
/** KV key of a shard in px_compaction (tenant.table.bucket). */
export const compactionKey = (s: ShardAddress): string => `${s.tenant}.${s.table}.${s.bucket}`;

/** KV key of a tenant's spec in px_config. */
export const tenantConfigKey = (tenant: string): string => `tenant.${tenant}`;

export interface IngestAddress {
  readonly tenant: string;
  readonly table: string;
}

/**
 * Request (JSON IngestStatusRequest -> IngestStatusReply, protocols/ingest.ts):
 * the highest producer seq the tenant's WAL holds per producer, so a publisher
 * can resume exactly after an outage longer than the WAL's duplicate window.
 * Under px.<t>.ingest.> so tenant publishers may send it; `_status` can be no
 * table's name (they start with a letter), so the gateway ignores it.
 */
export const ingestStatusSubject = (tenant: string): string => `px.${tenant}.ingest._status`;
export const INGEST_STATUS_WILDCARD = "px.*.ingest._status";
const INGEST_STATUS_TOKEN = "_status";

/** Parses `px.<tenant>.ingest._status` into its tenant. */
export function parseIngestStatusSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "px" || parts[2] !== "ingest" || parts[3] !== INGEST_STATUS_TOKEN) return undefined;
  return parts[1];
}

/** Parses `px.<tenant>.ingest.<table>`; undefined when the subject is not an ingest subject (the status request is not). */
export function parseIngestSubject(subject: string): IngestAddress | undefined {
  const parts = subject.split(".");
  if (parts.length !== 4 || parts[0] !== "px" || parts[2] !== "ingest" || parts[3] === INGEST_STATUS_TOKEN) return undefined;
  return { tenant: parts[1]!, table: parts[3]! };
}

export interface ShardAddress {
  readonly tenant: string;
  readonly table: string;
  readonly bucket: number;
}

/** Parses `px.<tenant>.wal.<table>.<bucket>`. */
export function parseWalSubject(subject: string): ShardAddress | undefined {
  const parts = subject.split(".");
  if (parts.length !== 5 || parts[0] !== "px" || parts[2] !== "wal") return undefined;
  const bucket = Number(parts[4]);
  if (!Number.isInteger(bucket) || bucket < 0) return undefined;
  return { tenant: parts[1]!, table: parts[3]!, bucket };
}

/** Ingest message headers (NATS headers). */
export const HDR_PRODUCER_ID = "Px-Producer-Id";
export const HDR_PRODUCER_SEQ = "Px-Producer-Seq";
export const HDR_MSG_ID = "Nats-Msg-Id";
/** On the first WAL record of a batch with a producer pair: the SHA-256 of all its records (the pair check). */
export const HDR_BATCH_DIGEST = "Px-Batch-Digest";

/** Nats-Msg-Id of one WAL record: a retried batch maps to the same ids, so JetStream stores it once. */
export const walMsgId = (producerId: string, producerSeq: bigint | number, table: string, bucket: number): string =>
  `${producerId}:${producerSeq}:${table}:${bucket}`;
/** On the first WAL record of a batch with a client's producer pair: how many WAL records the batch has (the ingest status tells a cut batch). */
export const HDR_BATCH_RECORDS = "Px-Batch-Records";

/**
 * The producer pair of a WAL record's Nats-Msg-Id: `producer:seq:table:bucket`
 * (walMsgId) or `producer:seq` (a batch's first record, src/node/gateway/pairs.ts).
 */
export function parseWalMsgId(msgId: string): { readonly producerId: string; readonly seq: bigint } | undefined {
  const parts = msgId.split(":");
  if (parts.length !== 2 && parts.length !== 4) return undefined;
  const [producerId, seq] = parts as [string, string];
  if (producerId === "" || !/^\d{1,20}$/.test(seq)) return undefined;
  return { producerId, seq: BigInt(seq) };
}

/** Request (reply inbox streamed in chunks): a query part for shards `nodeId` owns (src/node/fanout.ts). */
export const queryPartSubject = (nodeId: string): string => `px.node.${nodeId}.qpart`;
/** Publish: cancel a running query part by id (the client cancelled, or its deadline passed). */
export const queryCancelSubject = (nodeId: string): string => `px.node.${nodeId}.qcancel`;
/** Headers of a query part's reply chunks: the chunk's index, and "1" on the last chunk. */
export const HDR_PART_SEQ = "Px-Part-Seq";
export const HDR_PART_LAST = "Px-Part-Last";

/** Publish: a gateway's admitted ingest rates per tenant (src/quota/share.ts): tenants' rate quotas hold cluster-wide. */
export const QUOTA_RATES_SUBJECT = "px.node._quota.rates";

/** Subjects every pxctl control request matches. */
export const CONTROL_WILDCARD = "px.ctl.>";
export const ingestSubjectsOfTenant = (tenant: string): string => `px.${tenant}.ingest.>`;
export const ingestErrorSubjectsOfTenant = (tenant: string): string => `px.${tenant}.ingest_errors.>`;
export const feedSubjectsOfTenant = (tenant: string): string => `px.${tenant}.feed.>`;
/**
 * Reply inbox prefix of one tenant credential (NATS user): the user may
 * subscribe under it and nowhere else, so it cannot read other clients' replies.
 * Clients pass it as their connection's inbox prefix (nats.js `inboxPrefix`,
 * nats-py `inbox_prefix`).
 */
/** The root of every tenant credential's reply inbox: nodes reply under it, only the credential itself reads its own. */
export const TENANT_INBOX_ROOT = "_px_inbox";
export const tenantInboxPrefix = (tenant: string, credId: string): string => `${TENANT_INBOX_ROOT}.${tenant}.${credId}`;
/** KV bucket of issued NATS credentials: public keys and metadata, never seeds. */
export const KV_CREDS = "px_creds";
