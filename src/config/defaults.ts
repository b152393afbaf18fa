// Default ports and the environment variables that override them. The local
// cluster (`proxist up`), the node entry point, docker-compose.yml and the
// docs all take their values from here.

export const DEFAULT_PORTS = {
  nats: 4222,
  natsMonitor: 8222,
  clickhouseHttp: 8123,
  clickhouseTcp: 9000,
  http: 8080,
  grpc: 50051,
} as const;

export const ENV = {
  natsUrl: "PX_NATS_URL",
  clickhouseUrl: "PX_CLICKHOUSE_URL",
  httpPort: "PX_HTTP_PORT",
  /** Interface the node's HTTP server binds (127.0.0.1 by default; 0.0.0.0 in a container). */
  httpHost: "PX_HTTP_HOST",
  grpcPort: "PX_GRPC_PORT",
  nodeId: "PX_NODE_ID",
  dataDir: "PX_DATA_DIR",
  /** Replicas of streams and KV buckets a node creates: 1 on one NATS server, 3 on a cluster. */
  replicas: "PX_REPLICAS",
} as const;

/**
 * glibc malloc settings for a node process (the GLIBC_TUNABLES environment
 * variable, read when the process starts): buffers up to 32 MiB come from the
 * heap, and freed heap memory up to 512 MiB stays in the process for reuse
 * instead of going back to the kernel. Without them a large read's result and
 * wire buffers are fresh pages every time; on the shared VMs here faulting in
 * 280 MB costs ~0.9 s, three times the work of the read itself. The launcher
 * (`./proxist`), infra/Dockerfile and the test helpers set it; an operator's
 * own GLIBC_TUNABLES wins.
 */
export const MALLOC_TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=536870912";
