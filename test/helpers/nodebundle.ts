// The node processes the integration tests spawn run from a bundle, not
// through tsx: tsx resolves and loads each of the node's few hundred modules
// through its loader thread, ~3.3 s of wall and 2.3 s of CPU per start here,
// against ~1.5 s and 1 s for one bundled file, and the suite starts dozens of
// node processes (plus a heartbeat thread in each, also loaded through tsx).
// The bundle is built once per test run (globalSetup, nodebundlesetup.ts)
// with esbuild, the transpiler tsx uses, from the same sources; packages stay
// external (resolved from node_modules as under tsx). It sits at
// .build/node/src/ so paths relative to a module of src/ still resolve (the
// console's dist/ three levels up), with the worker threads' bundles beside
// it (src/node/workerentry.ts). PX_TEST_NODE_TSX=1 runs the processes
// through tsx instead.
import { build } from "esbuild";
import { join } from "node:path";

/** The directory the bundles are in. */
export const BUNDLE_DIR = join(".build", "node", "src");

/** Bundles the node's entry points and worker threads into `<root>/.build/node/src/`. */
export async function buildNodeBundle(root: string): Promise<string> {
  const outdir = join(root, BUNDLE_DIR);
  const common = { bundle: true, platform: "node", format: "esm", target: "node22", packages: "external", outdir, outExtension: { ".js": ".mjs" }, logLevel: "warning", sourcemap: "inline" } as const;
  await build({
    ...common,
    entryPoints: {
      main: join(root, "src/main.ts"),
      faultnode: join(root, "test/helpers/faultnode.ts"),
      heartbeatworker: join(root, "src/node/control/heartbeatworker.ts"),
      snapshotworker: join(root, "src/node/shard/snapshotworker.ts"),
    },
  });
  return outdir;
}
