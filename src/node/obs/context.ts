// OpenTelemetry's context manager over AsyncLocalStorage: the active span
// follows awaits and callbacks, so log lines and child spans find it. (The
// package @opentelemetry/context-async-hooks does the same; this is the small
// part of it Proxist needs.) Registered once per process by `enableContext`.
import { AsyncLocalStorage } from "node:async_hooks";
import { ROOT_CONTEXT, context } from "@opentelemetry/api";
import type { Context, ContextManager } from "@opentelemetry/api";

class AlsContextManager implements ContextManager {
  private readonly als = new AsyncLocalStorage<Context>();

  active(): Context {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }

  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.call(thisArg, ...args));
  }

  bind<T>(ctx: Context, target: T): T {
    if (typeof target !== "function") return target;
    const f = target as (...a: unknown[]) => unknown;
    return ((...a: unknown[]) => this.with(ctx, () => f(...a))) as T;
  }

  enable(): this {
    return this;
  }

  disable(): this {
    this.als.disable();
    return this;
  }
}

let enabled = false;

/** Registers the AsyncLocalStorage context manager (idempotent; a no-op if another one is registered). */
export function enableContext(): void {
  if (enabled) return;
  enabled = context.setGlobalContextManager(new AlsContextManager());
}
