// The house rules, read from the code's own imports: layers run one way
// (protocols <- core <- machines <- faces/wiring <- entry points), a folder
// with an index.ts is entered through it, and no file imports itself back.
import { describe, expect, it } from "vitest";
import { importGraph, layerOf, layerViolations, indexBypasses, importLoops, LAYERS } from "./graph.js";

const graph = importGraph();

describe("house - layers", () => {
  it("house - every source file belongs to a layer", () => {
    const homeless = [...graph.keys()].filter((f) => layerOf(f) === undefined);
    expect(homeless).toEqual([]);
  });

  it("house - imports run one way (protocols <- core <- machines <- faces, wiring <- entry)", () => {
    expect(layerViolations(graph)).toEqual([]);
  });

  it("house - a folder with an index.ts is imported through it", () => {
    expect(indexBypasses(graph)).toEqual([]);
  });

  it("house - no file loops", () => {
    expect(importLoops(graph)).toEqual([]);
  });

  it("house - the checker sees a violation when one exists (negative control)", () => {
    const g = new Map(graph);
    const core = [...g.keys()].find((f) => layerOf(f) === "core")!;
    const machine = [...g.keys()].find((f) => layerOf(f) === "machines")!;
    g.set(core, [...(g.get(core) ?? []), machine]);
    g.set(machine, [...(g.get(machine) ?? []), core]);
    expect(layerViolations(g).length).toBeGreaterThan(0);
    expect(importLoops(g).length).toBeGreaterThan(0);
    expect(Object.keys(LAYERS).length).toBe(6);
  });
});
