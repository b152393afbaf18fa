// Negative controls of the chaos checker (see controls.ts): with WAL dedup
// off, with the sink's landed check off, with an acknowledged batch dropped
// from ClickHouse, and with the sink's fence off, the checker must report the
// violation (and no other loss or duplicate), proving a clean chaos run is not
// a blind checker.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { summarize } from "./checker.js";
import { Controls, detected, startControlsHarness } from "./controls.js";
import type { Harness } from "./harness.js";

const log = (l: string): void => console.log(l);
let h: Harness;
let controls: Controls;

beforeAll(async () => {
  h = await startControlsHarness(log);
  await h.waitSettled(90_000);
  controls = new Controls(h, log);
}, 180_000);

afterAll(async () => {
  await h?.close();
});

describe("faults - negative controls: the checker finds each violation", () => {
  it("control - WAL dedup off (duplicate window 100 ms) and a retried batch (same producer id and seq): duplicates found in ClickHouse and in the nodes' answers", async () => {
    const r = await controls.dedupOff();
    expect(r.findings.duplicated.some((d) => d.startsWith("node ")), summarize(r.findings)).toBe(true);
    expect(detected(r), summarize(r.findings)).toBe(true);
  }, 240_000);

  it("control - sink landed-check off and a node killed after an INSERT, before its watermark: duplicates found in ClickHouse", async () => {
    const r = await controls.landedOff();
    expect(detected(r), summarize(r.findings)).toBe(true);
  }, 240_000);

  it("control - an acknowledged batch deleted from ClickHouse: every row of it found lost", async () => {
    const r = await controls.dropped();
    expect(detected(r), summarize(r.findings)).toBe(true);
  }, 240_000);

  // Last: it restarts both nodes.
  it("control - sink fence off (PX_FENCE_OFF=1) and the owner SIGSTOPped inside a stalled INSERT while its shards move: duplicates found in ClickHouse", async () => {
    const r = await controls.fenceOff();
    expect(detected(r), summarize(r.findings)).toBe(true);
  }, 240_000);
});
