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
  /** Interface the gRPC/Flight server binds (127.0.0.1 in plaintext, 0.0.0.0 with TLS, unless set). */
  grpcHost: "PX_GRPC_HOST",
  /** PEM certificate and key of the node's gRPC/Flight server: with both, it speaks TLS only. */
  tlsCert: "PX_TLS_CERT",
  tlsKey: "PX_TLS_KEY",
  /** CA certificate (PEM) trusted for NATS and the gRPC API (`pxctl certs init` writes ca.crt). */
  tlsCa: "PX_TLS_CA",
  natsCreds: "PX_NATS_CREDS",
  /** The deployment's NATS auth directory: a node given it serves the admin credentials calls (it then holds the account key). */
  authDir: "PX_AUTH_DIR",
  httpTls: "PX_HTTP_TLS",
  /** ClickHouse user and a file holding its password (a compose secret); default user `default`, no password. */
  clickhouseUser: "PX_CLICKHOUSE_USER",
  clickhousePasswordFile: "PX_CLICKHOUSE_PASSWORD_FILE",
  nodeId: "PX_NODE_ID",
  dataDir: "PX_DATA_DIR",
  /** Replicas of streams and KV buckets a node creates: 1 on one NATS server, 3 on a cluster. */
  replicas: "PX_REPLICAS",
  /** How long a sink gathers WAL records before one INSERT (ms; node --sink-batch-ms). */
  sinkBatchMs: "PX_SINK_BATCH_MS",
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
