// vitest globalSetup of the integration tests: builds the node bundle once
// (nodebundle.ts) and tells the test workers where it is.
import { fileURLToPath } from "node:url";
import { buildNodeBundle } from "./nodebundle.js";

export default async function setup(): Promise<void> {
  if (process.env.PX_TEST_NODE_TSX === "1") return;
  const root = fileURLToPath(new URL("../..", import.meta.url));
  process.env.PX_TEST_NODE_BUNDLE = await buildNodeBundle(root);
}
