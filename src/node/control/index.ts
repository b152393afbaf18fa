// Public surface of the control-plane wiring: the IO that the controller and
// agent machines are provided with, the runtimes that run them, and the whole
// control plane of a node in one call. The decisions and stores live in src/control/.
export type { ControllerIO } from "./controllerio.js";
export { controllerActors } from "./controllerio.js";
export type { AgentIO } from "./agentio.js";
export { agentActors, applyShardWork } from "./agentio.js";
export type { ControllerHandle, ControllerOptions, AgentHandle, AgentOptions, HeartbeatCoverDial } from "./runtime.js";
export { heartbeatGraceMs } from "./heartbeatcover.js";
export { placementSettleMs } from "./settle.js";
export { startController, startAgent, SOFTWARE_VERSION } from "./runtime.js";
export type { ControlPlane, ControlPlaneOptions } from "./plane.js";
export { startControlPlane, CONTROL_DEFAULTS } from "./plane.js";
