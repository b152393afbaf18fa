// Where a worker thread's module is: next to the module that starts it. From
// source (tsx, vitest) that is the .ts file, loaded through tsx; from a bundle
// (the test suite's node processes, test/helpers/nodebundle.ts) it is the
// worker's own bundle, `<name>.mjs` beside the main one, loaded as it is.

export interface WorkerEntry {
  readonly url: URL;
  readonly execArgv: string[];
}

/** The worker module `name` (without extension) for a module whose URL is `from` (its import.meta.url). */
export function workerEntry(name: string, from: string): WorkerEntry {
  if (from.endsWith(".ts")) return { url: new URL(`./${name}.ts`, from), execArgv: ["--import", "tsx"] };
  return { url: new URL(`./${name}.mjs`, from), execArgv: [] };
}
