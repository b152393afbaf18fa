// Public surface of the control plane: placement, leases, heartbeats,
// assignments (with fencing), the controller/agent runtime, and the
// px.ctl.<verb> server and client. Other folders import from here only.
export type { ControlKv, KvRecord, KvChange } from "./kv.js";
export { KvConflictError, KvWatchError, isConflict } from "./kv.js";
export { MemoryKv, PartitionedKv } from "./memorykv.js";
export { natsControlKv, openKv } from "./natskv.js";
export type { BucketOptions } from "./natskv.js";

export type { ShardRef } from "./shard.js";
export { shardKey, parseShardKey, shardsOfCatalog } from "./shard.js";
export type { ShardHost, ShardStatusLike } from "./shardhost.js";

export type { PlacementNode, Placement } from "./placement.js";
export { placeShards, rankNodes } from "./placement.js";
export { planAssignments } from "./plan.js";

export type { LeaseRecord, StoredLease, LeaseObservation, LeaseVerdict } from "./lease.js";
export { LeaseStore, LEASE_KEY, observeLease, leaseVerdict } from "./lease.js";
export type { HeartbeatInfo, StoredHeartbeat, HeartbeatChange, NodePhase } from "./heartbeat.js";
export { HeartbeatStore, validateNodeId } from "./heartbeat.js";
export type { Assignment, AssignmentTable, AssignmentWrite, AssignmentChange, LeaderMarker } from "./assignments.js";
export { AssignmentStore, FencedError, LEADER_MARKER_KEY } from "./assignments.js";
export type { NodeSighting, NodeTable } from "./liveness.js";
export { sightNode, forgetNode, placeableNodes } from "./liveness.js";

export type { ControlStores, ControlStoreOptions } from "./stores.js";
export { openControlStores, storesOver } from "./stores.js";
export { MetadataStore, MetadataConflictError, openConfigBucket } from "./metadata.js";
export type { StoredTenant, MetadataSnapshot } from "./metadata.js";
export type { ControllerIO, CatalogSource } from "./controllerio.js";
export { watchCatalog, openCatalog, openCatalogSource, catalogRetry, CatalogWatchError } from "./catalogsource.js";
export type { NodeCatalog, CatalogOptions } from "./catalogsource.js";
export { controllerActors } from "./controllerio.js";
export type { AgentIO } from "./agentio.js";
export { agentActors, applyShardWork } from "./agentio.js";
export type { ControllerHandle, ControllerOptions, AgentHandle, AgentOptions } from "./runtime.js";
export { startController, startAgent, SOFTWARE_VERSION } from "./runtime.js";

export type { ControlPlane, ControlPlaneOptions } from "./plane.js";
export { startControlPlane, CONTROL_DEFAULTS } from "./plane.js";

export type { SpecChange, SpecDiff, FieldChange } from "./specdiff.js";
export { diffClusterSpec, formatDiff } from "./specdiff.js";
export type { ClusterState, StatusView, NodeView, ShardView, LeaderView, TenantView, TableView } from "./views.js";
export { statusView } from "./views.js";
export type { ControlBackend, ControlErrorCode, ApplyRequest, ApplyReply, GetReply, DescribeReply, GetKind, DescribeKind } from "./handlers.js";
export { ControlError, controlBackend, handleControl, CONTROL_VERBS, GET_KINDS, DESCRIBE_KINDS } from "./handlers.js";
export type { ControlServer } from "./ctlserver.js";
export { startControlServer, serveControl, CONTROL_QUEUE } from "./ctlserver.js";
export { controlRequest, ControlUnreachableError, ControlReplyError } from "./ctlclient.js";
