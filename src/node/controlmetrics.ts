// The control plane's Prometheus figures: this node's controller role (one
// series per role, 1 on the current one) and leader term, its agent phase, and
// counters of the leader's work from the controller's notifications: terms won,
// step-downs, assignment writes. A cluster's panels take max()/sum() over nodes.
import { Counter, Gauge } from "prom-client";
import type { Registry } from "prom-client";
import type { ControlPlane } from "./control/index.js";

/** Every role controllerRole() can report, plus "none" (a node that never leads). */
const ROLES = ["follower", "candidate", "leader", "steppingDown", "releasing", "stopped", "none"] as const;

export function controlFamilies(registry: Registry, control: ControlPlane): void {
  const registers = [registry];
  new Gauge({
    name: "px_controller_role",
    help: "This node's controller role: 1 on the current one (leader on exactly one node of a healthy cluster)",
    labelNames: ["role"],
    registers,
    collect() {
      const now = control.state().role;
      for (const role of ROLES) this.set({ role }, role === now ? 1 : 0);
    },
  });
  new Gauge({
    name: "px_controller_leader_term",
    help: "The leader term this node holds, 0 when it does not lead",
    registers,
    collect() {
      this.set(control.controller?.isLeader() === true ? (control.controller.term() ?? 0) : 0);
    },
  });
  new Gauge({
    name: "px_agent_phase",
    help: "This node's agent phase: 1 on the current one",
    labelNames: ["phase"],
    registers,
    collect() {
      this.reset();
      this.set({ phase: control.state().phase }, 1);
    },
  });
  const actor = control.controller?.actor;
  if (actor === undefined) return;
  const elected = new Counter({ name: "px_controller_elections_total", help: "Leader terms this node won", registers });
  const steppedDown = new Counter({ name: "px_controller_stepdowns_total", help: "Times this node stopped leading (lease lost, fenced, KV failures)", registers });
  const writes = new Counter({ name: "px_controller_assignment_writes_total", help: "Shard assignments this node wrote to px_assign as leader (a shard placed, moved or removed)", registers });
  actor.on("elected", () => elected.inc());
  actor.on("steppedDown", () => steppedDown.inc());
  actor.on("assigned", (e) => writes.inc(e.writes.length));
}
