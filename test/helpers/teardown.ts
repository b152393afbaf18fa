// Setup file of the int project (vitest.config.ts): after each test file,
// remove what the shared helpers left in /tmp (the test NATS identity: one
// directory per test file accumulated there before).
import { afterAll } from "vitest";
import { disposeTestNatsAuth } from "./cluster.js";

afterAll(() => disposeTestNatsAuth());
