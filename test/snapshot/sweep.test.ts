// Which leftovers of unfinished snapshot writes a sweep may remove: data
// objects without their manifest, once old enough; chunk subjects no live
// object names. Pure.
import { describe, expect, it } from "vitest";
import { dataWithoutManifest, unreferencedChunkSubjects } from "../../src/snapshot/sweep.js";

const at = (ms: number): string => new Date(ms).toISOString();

describe("snapshot sweep - what counts as a leftover", () => {
  it("dataWithoutManifest - a data object goes only without its manifest and once untouched for the grace; deleted objects count as absent", () => {
    const now = 10_000_000;
    const infos = [
      { name: "t.a.0.001.data", mtime: at(0), deleted: false },
      { name: "t.a.0.001.manifest", mtime: at(0), deleted: false },
      { name: "t.a.0.002.data", mtime: at(0), deleted: false },
      { name: "t.a.0.003.data", mtime: at(now - 1_000), deleted: false },
      { name: "t.a.0.004.data", mtime: at(0), deleted: true },
      { name: "t.a.0.005.data", mtime: at(0), deleted: false },
      { name: "t.a.0.005.manifest", mtime: at(0), deleted: true },
    ];
    expect(dataWithoutManifest(infos, now, 60_000)).toEqual(["t.a.0.002.data", "t.a.0.005.data"]);
    expect(dataWithoutManifest(infos, now, 0)).toEqual(["t.a.0.002.data", "t.a.0.003.data", "t.a.0.005.data"]);
  });

  it("unreferencedChunkSubjects - chunk subjects of the bucket that no live object's info names; other buckets' and the meta subjects are not touched", () => {
    const subjects = ["$O.snap.C.A", "$O.snap.C.B", "$O.snap.C.C", "$O.other.C.D", "$O.snap.M.bmFtZQ"];
    const infos = [
      { nuid: "A", deleted: false },
      { nuid: "B", deleted: true },
    ];
    expect(unreferencedChunkSubjects("snap", subjects, infos)).toEqual(["$O.snap.C.B", "$O.snap.C.C"]);
  });
});
