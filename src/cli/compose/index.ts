// `./proxist compose`: the docker-compose.yml cluster on Docker or Podman.
export { up, down, findEngine, composeFiles, startLevels, PROJECT, DEMO_SERVICE } from "./stack.js";
export type { ComposeOptions, Engine } from "./stack.js";
export { ComposeError, BASE_IMAGE } from "./podman.js";
