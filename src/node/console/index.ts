// The web console on the node: its built files at `/` and the JSON route of
// its cluster page (GET /v1/cluster).
export { consoleRoutes, DEFAULT_CONSOLE_DIR } from "./static.js";
export { clusterRoute } from "./cluster.js";
export type { ClusterRouteOptions } from "./cluster.js";
