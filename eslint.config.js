// Lint with type information: a forgotten promise in an actor system is a lost write.
import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The pure core (see README "How it is built").
const CORE = ["src/wal/", "src/hotset/", "src/query/", "src/sql/", "src/codec/", "src/ingest/", "src/clickhouse/", "src/snapshot/", "src/auth/", "src/sink/", "src/shard/", "src/control/", "src/feed/", "src/config/", "src/quota/"];

export default tseslint.config(
  { ignores: ["node_modules/", ".tools/", ".data/", "protocols/gen/", "bench/results/", ".venv/", "scratch/", "dist/", "test/.artifacts/", ".build/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
    },
  },
  // The house: imports run one way, protocols <- core <- machines <- faces and
  // wiring <- entry points. test/house/layers.test.ts checks the same rules on
  // the resolved graph (and file loops); these catch a wrong import as it is typed.
  {
    files: ["protocols/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ regex: "^(\\.\\./)+(src|actors)/", message: "protocols/ is the ground floor: it imports nothing of the project above it." }] }] },
  },
  {
    files: CORE.map((d) => `${d}**/*.ts`).concat(["src/catalog.ts"]),
    rules: {
      "no-restricted-imports": ["error", { patterns: [
        { regex: "^(\\.\\./)+actors/", message: "the core knows no machine: machines are driven by the wiring in src/node/." },
        { regex: "^(\\.\\./)+(node|runtime|demo|api|client|cli)/|^(\\.\\./)+main\\.js$", message: "the core knows no process, server or client: move the IO that needs it to src/node/ (wiring)." },
      ] }],
    },
  },
  {
    files: ["actors/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ regex: "^\\.\\./src/(node|runtime|demo|api|client|cli|main)", message: "machines get IO by provide(), never by import." }] }] },
  },
  {
    files: ["src/api/**/*.ts", "src/client/**/*.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ regex: "^(\\.\\./)+(actors|node|runtime|demo|cli)/", message: "faces (API server, client) sit on the core; they never import machines or wiring." }] }] },
  },
);
