// Lag remediation workflow with fake IO and a simulated clock: escalation one
// step per dwell time while lag stays above the SLO, holding between half and
// the whole SLO (hysteresis), stepping back once recovered, a skipped move step
// still followed by the alert, a table that switched the workflow off, and a
// failed reading. And the pure planner on its own.
import { describe, expect, it } from "vitest";
import { SimulatedClock, createActor, fromPromise } from "xstate";
import { lagStepOf, remediationMachine } from "../../actors/remediation.js";
import type { LagObservation, RemediationRecorded, StepResult } from "../../actors/remediation.js";
import { LAG_SLO_DEFAULTS } from "../../protocols/tablespec.js";
import type { LagSlo } from "../../protocols/tablespec.js";
import { planLagSteps } from "../../src/sink/index.js";
import type { LagReading, StepChange } from "../../src/sink/index.js";

const KEY = "t.trades.0";
const SLO: LagSlo = { seconds: 10, records: 1_000, dwellSeconds: 5, enabled: true };

const settle = async (): Promise<void> => {
  for (let i = 0; i < 10; i++) await Promise.resolve();
};

/** Readings come from `lag()` at the clock's time; `apply` skips the move as a single node does. */
function harness(o: { slo?: LagSlo; singleNode?: boolean; observeFails?: () => boolean } = {}) {
  const clock = new SimulatedClock();
  let lag = { lagMs: 0, lagRecords: 0 };
  let slo = o.slo ?? SLO;
  const applied: StepChange[] = [];
  const recorded: RemediationRecorded[] = [];
  const actor = createActor(
    remediationMachine.provide({
      actors: {
        observe: fromPromise<LagObservation>(async () => {
          if (o.observeFails?.() === true) throw new Error("NATS timeout");
          const reading: LagReading = { key: KEY, ...lag, slo };
          return { atMs: clock.now(), readings: [reading] };
        }),
        apply: fromPromise<readonly StepResult[], { changes: readonly StepChange[] }>(async ({ input }) =>
          input.changes.map((change) => {
            applied.push(change);
            const skip = change.to === 3 && change.from === 2 && o.singleNode !== false;
            return { change, applied: !skip, message: skip ? `${change.key}: move skipped: one node` : `${change.key}: step ${change.to}` };
          }),
        ),
      },
    }),
    { input: { intervalMs: 1_000 }, clock },
  );
  actor.on("recorded", (e) => recorded.push(e));
  actor.start();
  // Readings are taken once a second: lag set now is first read a second later.
  const run = async (ms: number): Promise<void> => {
    for (let t = 0; t < ms; t += 1_000) {
      clock.increment(1_000);
      await settle();
    }
  };
  return {
    actor,
    applied,
    recorded,
    run,
    step: () => lagStepOf(actor.getSnapshot().context, KEY),
    setLag: (lagMs: number, lagRecords = 0) => (lag = { lagMs, lagRecords }),
    setSlo: (s: LagSlo) => (slo = s),
  };
}

describe("remediation machine", () => {
  it("escalation - one step per dwell time above the SLO, up to the alert; none below it", async () => {
    const h = harness();
    h.setLag(9_000);
    await h.run(30_000);
    expect(h.step()).toBe(0);
    expect(h.applied).toHaveLength(0);
    h.setLag(12_000);
    await h.run(5_000);
    expect(h.step()).toBe(0); // first read above 1 s in: 4 s of a 5 s dwell
    await h.run(1_000);
    expect(h.step()).toBe(1);
    await h.run(4_000);
    expect(h.step()).toBe(1); // the dwell counts again from the step
    await h.run(1_000);
    expect(h.step()).toBe(2);
    await h.run(20_000);
    expect(h.step()).toBe(4);
    expect(h.applied.map((c) => `${c.from}->${c.to}`)).toEqual(["0->1", "1->2", "2->3", "3->4"]);
    expect(h.recorded.map((r) => r.kind)).toEqual(["lag.step_up", "lag.step_up", "lag.step_skipped", "lag.step_up"]);
    expect(h.applied[0]!.reason).toMatch(/lag 1[0-9]\.0 s \/ 0 records \(SLO 10 s \/ 1000 records\) for 5 s/);
  });

  it("LSN lag - records over the SLO escalate like time does", async () => {
    const h = harness();
    h.setLag(0, 5_000);
    await h.run(6_000);
    expect(h.step()).toBe(1);
  });

  it("one node - the move step is skipped with its reason, and the alert follows after the dwell", async () => {
    const h = harness();
    h.setLag(60_000);
    await h.run(16_000);
    expect(h.step()).toBe(3);
    expect(h.recorded.at(-1)).toEqual({ type: "recorded", kind: "lag.step_skipped", message: `${KEY}: move skipped: one node` });
    await h.run(5_000);
    expect(h.step()).toBe(4);
    expect(h.recorded.at(-1)!.kind).toBe("lag.step_up");
  });

  it("hysteresis - between half and the whole SLO the step holds; at or below half it steps back one per dwell", async () => {
    const h = harness();
    h.setLag(20_000);
    await h.run(11_000);
    expect(h.step()).toBe(2);
    h.setLag(7_000); // under the SLO, above half of it
    await h.run(60_000);
    expect(h.step()).toBe(2);
    h.setLag(5_000); // half: recovered
    await h.run(5_000);
    expect(h.step()).toBe(2);
    await h.run(1_000);
    expect(h.step()).toBe(1);
    // A reading above half restarts the recovery run.
    h.setLag(6_000);
    await h.run(3_000);
    h.setLag(1_000);
    await h.run(5_000);
    expect(h.step()).toBe(1);
    await h.run(1_000);
    expect(h.step()).toBe(0);
    await h.run(30_000);
    expect(h.step()).toBe(0);
    expect(h.applied.map((c) => `${c.from}->${c.to}`)).toEqual(["0->1", "1->2", "2->1", "1->0"]);
    expect(h.recorded.slice(-2).map((r) => r.kind)).toEqual(["lag.step_down", "lag.step_down"]);
  });

  it("switched off - a table with lagSlo.enabled false takes no step, and one in a step goes back to 0 at once", async () => {
    const h = harness({ slo: { ...SLO, enabled: false } });
    h.setLag(600_000, 1_000_000);
    await h.run(60_000);
    expect(h.step()).toBe(0);
    expect(h.applied).toHaveLength(0);
    h.setSlo(SLO);
    await h.run(11_000);
    expect(h.step()).toBe(2);
    h.setSlo({ ...SLO, enabled: false });
    await h.run(1_000);
    expect(h.step()).toBe(0);
    expect(h.applied.at(-1)).toMatchObject({ from: 2, to: 0, reason: "the table's lagSlo.enabled is false" });
  });

  it("failure - a failed reading is recorded and the next interval reads again", async () => {
    let fails = 1;
    const h = harness({ observeFails: () => fails-- > 0 });
    await h.run(1_000);
    expect(h.recorded).toEqual([{ type: "recorded", kind: "lag.failed", message: "lag remediation observing: NATS timeout; trying again in 1000 ms" }]);
    h.setLag(20_000);
    await h.run(6_000);
    expect(h.step()).toBe(1);
    expect(h.actor.getSnapshot().context.stats.failures).toBe(1);
  });
});

describe("planLagSteps", () => {
  const r = (lagMs: number, key = KEY): LagReading => ({ key, lagMs, lagRecords: 0, slo: SLO });
  it("forgets shards no longer read, starts new ones at step 0", () => {
    const first = planLagSteps({}, [r(20_000), r(0, "t.trades.1")], 1_000);
    expect(Object.keys(first.next).sort()).toEqual([KEY, "t.trades.1"]);
    const later = planLagSteps({ ...first.next, [KEY]: { ...first.next[KEY]!, step: 3 } }, [r(0, "t.trades.1")], 2_000);
    expect(Object.keys(later.next)).toEqual(["t.trades.1"]);
    expect(later.changes).toEqual([]);
  });

  it("defaults - the default SLO is on", () => {
    expect(LAG_SLO_DEFAULTS).toMatchObject({ seconds: 60, records: 100_000, dwellSeconds: 30, enabled: true });
  });
});
