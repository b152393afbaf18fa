// pxctl apply of user-defined functions (issue 17): each bad function is
// refused by name (syntax error, wrong kind, missing definition, a built-in's
// name, limits past the caps, a top level that loops) and nothing is written;
// a good one is stored with its content hash and version 1, a changed source
// raises the version, an unchanged one keeps it.
import { describe, expect, it } from "vitest";
import { handleControl } from "../../src/control/index.js";
import type { ApplyReply, ControlBackend, StoredTenant } from "../../src/control/index.js";
import { formatDiff } from "../../src/control/specdiff.js";
import { parseTenantSpec } from "../../protocols/tablespec.js";
import type { ClusterSpec, FunctionSpec } from "../../protocols/tablespec.js";
import { AS_VWAP_SOURCE, VWAP_SOURCE } from "./sources.js";

const table = { name: "trades", columns: [{ name: "price", type: "float64" }, { name: "size", type: "float64" }] };

function backendOf(): { b: ControlBackend; written: ClusterSpec[]; tenants: Map<string, StoredTenant> } {
  const tenants = new Map<string, StoredTenant>([["acme", { spec: parseTenantSpec({ name: "acme", tables: [table] }), revision: 1 }]]);
  const written: ClusterSpec[] = [];
  const b: ControlBackend = {
    tenants: async () => tenants,
    apply: async (spec) => {
      written.push(spec);
      const out = new Map<string, number>();
      for (const t of spec.tenants) {
        const rev = (tenants.get(t.name)?.revision ?? 0) + 1;
        tenants.set(t.name, { spec: t, revision: rev });
        out.set(t.name, rev);
      }
      return out;
    },
    readState: async () => {
      throw new Error("not used");
    },
  };
  return { b, written, tenants };
}

const specWith = (functions: unknown[]): unknown => ({ tenants: [{ name: "acme", tables: [table], functions }] });

describe("pxctl apply of functions", () => {
  const bad: [string, unknown, RegExp][] = [
    ["a syntax error", { name: "f", kind: "scalar", source: "function f(x) { return x +; }" }, /tenant acme function f: the source does not parse: SyntaxError: .*; fix the syntax/],
    ["a missing definition", { name: "g", kind: "scalar", source: "function other(x) { return x; }" }, /tenant acme function g: kind scalar: g is not defined; define it as function g\(a, b\)/],
    ["the wrong kind", { name: "h", kind: "scalar", source: VWAP_SOURCE.replace("myvwap", "h") }, /tenant acme function h: kind scalar: h is a object, not a function; .* or set kind to match/],
    ["an aggregate without merge", { name: "k", kind: "aggregate", source: "const k = { init() { return 0; }, accumulate(s, x) { return s + x; }, finish(s) { return s; } };" }, /tenant acme function k: kind aggregate: k has no function merge/],
    ["a built-in's name", { name: "vwap", kind: "scalar", source: "function vwap(x) { return x; }" }, /tenant acme function vwap: the name "vwap" is a built-in aggregate .*; give the function another name/],
    ["limits past the caps", { name: "m", kind: "scalar", source: "function m(x) { return x; }", limits: { memoryBytes: 4 * 2 ** 30 } }, /tenant acme function m: limits.memoryBytes 4294967296 is above this node's cap 536870912; lower it/],
    ["a looping top level", { name: "n", kind: "scalar", source: "for (;;) {} function n(x) { return x; }", limits: { cpuMsPerCall: 100 } }, /tenant acme function n: running the source's top level passed the CPU-time limit of 100 ms per call/],
    ["an unknown language", { name: "p", kind: "scalar", language: "python", source: "def p(x): return x" }, /cluster spec is invalid: Expected "javascript" \| "assemblyscript"\s+at \["tenants"\]\[0\]\["functions"\]\[0\]\["language"\]/],
    ["AssemblyScript that does not compile", { name: "a", kind: "scalar", language: "assemblyscript", source: "export function a(x: f64): f64 { return x +; }" }, /tenant acme function a: the AssemblyScript source does not compile: .*ERROR/],
    ["AssemblyScript reaching for the host", { name: "r", kind: "scalar", language: "assemblyscript", source: "export function r(x: f64): f64 { return Math.random(); }" }, /tenant acme function r: the module imports env\.seed from the host/],
    ["an unknown kind", { name: "q", kind: "window", source: "function q(x) { return x; }" }, /cluster spec is invalid: Expected "scalar" \| "aggregate"\s+at \["tenants"\]\[0\]\["functions"\]\[0\]\["kind"\]/],
  ];
  for (const [what, f, msg] of bad) {
    it(`refuses ${what} (dry run and apply), writing nothing`, async () => {
      const { b, written } = backendOf();
      for (const dryRun of [true, false]) {
        await expect(handleControl("apply", { spec: specWith([f]), dryRun }, b)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(msg) });
      }
      expect(written).toEqual([]);
    });
  }

  it("stores a function with its hash and version; a changed source raises the version, an unchanged one keeps it", async () => {
    const { b, tenants } = backendOf();
    const f = { name: "myvwap", kind: "aggregate", source: VWAP_SOURCE };
    const r1 = (await handleControl("apply", { spec: specWith([f]) }, b)) as ApplyReply;
    expect(r1.applied).toBe(true);
    const stored = (): FunctionSpec => tenants.get("acme")!.spec.functions![0]!;
    expect(stored()).toMatchObject({ name: "myvwap", version: 1, hash: expect.stringMatching(/^[0-9a-f]{16}$/) });
    expect(formatDiff(r1.diff)).toEqual([`+ function acme.myvwap (version 1, hash ${stored().hash})`]);
    const h1 = stored().hash;
    const r2 = (await handleControl("apply", { spec: specWith([f]) }, b)) as ApplyReply;
    expect(r2.applied).toBe(false);
    expect(stored().version).toBe(1);
    const r3 = (await handleControl("apply", { spec: specWith([{ ...f, source: `${VWAP_SOURCE}\n// v2` }]) }, b)) as ApplyReply;
    expect(r3.applied).toBe(true);
    expect(stored()).toMatchObject({ version: 2 });
    expect(stored().hash).not.toBe(h1);
    expect(formatDiff(r3.diff)).toEqual([`~ function acme.myvwap: version 1 -> 2 (hash ${stored().hash})`]);
    const r4 = (await handleControl("apply", { spec: specWith([]) }, b)) as ApplyReply;
    expect(formatDiff(r4.diff)).toEqual(["- function acme.myvwap"]);
  });

  // Two compiles of ~1-1.5 s of CPU each: on a loaded 2-core machine they took over 5 s.
  it("AssemblyScript: stores the compiled module with the function; an unchanged function keeps its module, a module in the input is not taken", { timeout: 60_000 }, async () => {
    const { b, tenants } = backendOf();
    const f = { name: "asvwap", kind: "aggregate", language: "assemblyscript", source: AS_VWAP_SOURCE };
    await handleControl("apply", { spec: specWith([f]) }, b);
    const stored = (): FunctionSpec => tenants.get("acme")!.spec.functions![0]!;
    const wasm = stored().wasm!;
    expect(Buffer.from(wasm, "base64").subarray(0, 4)).toEqual(Buffer.from([0, 0x61, 0x73, 0x6d]));
    expect(stored()).toMatchObject({ version: 1 });
    // Applied again with a module of its own: the stored one stays, and nothing changed.
    const r2 = (await handleControl("apply", { spec: specWith([{ ...f, wasm: Buffer.from("not a module").toString("base64") }]) }, b)) as ApplyReply;
    expect(r2.applied).toBe(false);
    expect(stored().wasm).toBe(wasm);
    // A new function with a module in the input: compiled from its source all the same.
    const g = { name: "asvwap2", kind: "aggregate", language: "assemblyscript", source: AS_VWAP_SOURCE, wasm: Buffer.from("not a module").toString("base64") };
    await handleControl("apply", { spec: specWith([f, g]) }, b);
    expect(tenants.get("acme")!.spec.functions![1]!.wasm).toBe(wasm);
  });

  it("refuses a function declared twice", async () => {
    const { b } = backendOf();
    const f = { name: "f", kind: "scalar", source: "function f(x) { return x; }" };
    await expect(handleControl("apply", { spec: specWith([f, f]) }, b)).rejects.toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/function "f" is declared twice; keep one/) });
  });
});
