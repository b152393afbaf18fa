import { defineConfig } from "vitest/config";

// Two projects: `unit` (pure, fast, *.test.ts) and `int` (real nats-server and
// clickhouse-server started per file on free ports, *.int.test.ts).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          // Unit files share their workers' module cache: two thirds of the stage was importing
          // the same modules once per file (94 s isolated, ~50 s shared). Unit tests hold no
          // global state between files; a file that needs a fresh module graph belongs in int.
          isolate: false,
          exclude: ["test/**/*.int.test.ts"],
          // What a node does when a user-defined function loads (src/udf/v8wasm.ts), here from the start: with
          // isolate off, files share a process whatever their order, and a V8 abort there ends the whole stage.
          execArgv: ["--no-wasm-code-gc"],
        },
      },
      {
        test: {
          name: "int",
          include: ["test/**/*.int.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          setupFiles: ["test/helpers/teardown.ts"],
          // Node processes the tests spawn run from one bundle built here (test/helpers/nodebundle.ts).
          globalSetup: ["test/helpers/nodebundlesetup.ts"],
          // The servers the tests start reserve every stream's max_bytes (a WAL: 2 GiB) against a
          // store sized from the free disk by default: on a nearly full disk, streams were refused.
          env: { PX_NATS_MAX_FILE_STORE: "1T" },
        },
      },
    ],
  },
});
