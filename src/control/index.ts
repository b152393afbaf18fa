// Public surface of the control plane's core: placement, leases, heartbeats,
// assignments (with fencing), the KV stores and catalog source, and the
// px.ctl.<verb> server and client. Other folders import from here only; the
// controller/agent runtimes that run the machines are in src/node/control/.
export type { ControlKv, KvRecord, KvChange } from "./kv.js";
export { KvConflictError, KvWatchError, isConflict, jsonValue } from "./kv.js";
export { MemoryKv, PartitionedKv } from "./memorykv.js";
export { natsControlKv, openKv } from "./natskv.js";
export type { BucketOptions } from "./natskv.js";

export type { ShardRef } from "./shard.js";
export { shardKey, parseShardKey, shardsOfCatalog } from "./shard.js";
export type { LeaseConfirm, ShardHost } from "./shardhost.js";

export type { PlacementNode, Placement } from "./placement.js";
export { placeShards, rankNodes, voidOverrides, LOAD_BOUND, PLACEMENT_SETTLE_MS } from "./placement.js";
export type { StoredOverride, OverrideChange } from "./overrides.js";
export { OverrideStore } from "./overrides.js";
export type { MoveDecision } from "./move.js";
export { decideMove, liveNodeLoads, moveShard, resolveShard } from "./move.js";
export { planAssignments } from "./plan.js";

export type { LeaseRecord, StoredLease, LeaseObservation, LeaseVerdict } from "./lease.js";
export { LeaseStore, LEASE_KEY, observeLease, leaseVerdict } from "./lease.js";
export type { HeartbeatInfo, StoredHeartbeat, HeartbeatChange, NodePhase } from "./heartbeat.js";
export { HeartbeatStore, validateNodeId, encodeHeartbeatInfo } from "./heartbeat.js";
export type { Assignment, AssignmentTable, AssignmentWrite, AssignmentChange, LeaderMarker } from "./assignments.js";
export { AssignmentStore, FencedError, LEADER_MARKER_KEY } from "./assignments.js";
export type { NodeReport, NodeSighting, NodeTable } from "./liveness.js";
export { sightNode, forgetNode, placeableNodes, nextExpiry, nextSettle } from "./liveness.js";
export type { AttentionState } from "./attention.js";
export { startAttention, tickAttention, attentionAt } from "./attention.js";

export type { ControlStores, ControlStoreOptions } from "./stores.js";
export { openControlStores, storesOver } from "./stores.js";
export { MetadataStore, MetadataConflictError, openConfigBucket } from "./metadata.js";
export type { StoredTenant, MetadataSnapshot } from "./metadata.js";
export type { CatalogSource, NodeCatalog, CatalogOptions } from "./catalogsource.js";
export { watchCatalog, openCatalog, openCatalogSource, catalogRetry, CatalogWatchError } from "./catalogsource.js";
export { runWatch } from "./watchactor.js";

export type { SpecChange, SpecDiff, FieldChange } from "./specdiff.js";
export { diffClusterSpec, formatDiff } from "./specdiff.js";
export { evolveClusterSpec, evolveTable, evolveTenant } from "./specevolve.js";
export type { Evolved } from "./specevolve.js";
export type { ClusterState, StatusView, NodeView, ShardView, LeaderView, TenantView, TableView } from "./views.js";
export { statusView, shardViews } from "./views.js";
export type { StandaloneInput } from "./standalone.js";
export { standaloneState, STANDALONE_HOLDER_SUFFIX } from "./standalone.js";
export type { ControlBackend, ControlErrorCode, ApplyRequest, ApplyReply, GetReply, DescribeReply, GetKind, DescribeKind } from "./handlers.js";
export { ControlError, controlBackend, handleControl, CONTROL_VERBS, GET_KINDS, DESCRIBE_KINDS } from "./handlers.js";
export type { ControlServer } from "./ctlserver.js";
export { startControlServer, serveControl, CONTROL_QUEUE } from "./ctlserver.js";
export { controlRequest, ControlUnreachableError, ControlReplyError } from "./ctlclient.js";
export type { Unreported, UnreportedTable, UnhostedRepair } from "./unhosted.js";
export { UNHOSTED_REPAIR_MS, noteReport, pruneUnreported, dueRepairs, repairWrite } from "./unhosted.js";
