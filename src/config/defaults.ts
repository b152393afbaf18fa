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
  grpcPort: "PX_GRPC_PORT",
  nodeId: "PX_NODE_ID",
  dataDir: "PX_DATA_DIR",
  /** Replicas of streams and KV buckets a node creates: 1 on one NATS server, 3 on a cluster. */
  replicas: "PX_REPLICAS",
} as const;
