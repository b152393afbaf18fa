// Public surface of protocols/: schemas, codecs, subject names, routing.
export * from "./subjects.js";
export * from "./routing.js";
export * from "./shardstatus.js";
export * from "./errors.js";
export * from "./tagged.js";
export * from "./codec.js";
export * from "./ingest.js";
export * from "./tablespec.js";
export * from "./arrow.js";
export * from "./natsroles.js";
export * from "./placement.js";
