// V8's garbage collection of WebAssembly code, switched off for this process
// when the first user-defined function loads (JavaScript ones run in QuickJS,
// itself WebAssembly; AssemblyScript ones are).
//
// Why: V8 in Node 24 (seen on 24.22.3) can abort the whole process with
// "Check failed: jit_page_->allocations_.erase(addr) == 1" in
// ThreadIsolation::UnregisterWasmAllocation when it frees WebAssembly code
// while isolates holding the same module come and go (nodejs/node#64500).
// Proxist does exactly that: a function's module is shared with the worker
// thread that runs it, a call past its CPU-time limit ends that thread, and
// the compiler (binaryen, itself WebAssembly) runs in a thread too. The only
// code V8 frees while a module lives is code it replaced (a function's
// baseline code once its optimized code is in); without the collection that
// code stays until the module itself is dropped (when its function is
// unloaded), a few KiB per hot function. The flag is read when dead code is
// reported, so setting it now holds for every module compiled later.
import { setFlagsFromString } from "node:v8";

let done = false;

/** Switches off WebAssembly code GC in this process (once; idempotent). */
export function disableWasmCodeGc(): void {
  if (done) return;
  setFlagsFromString("--no-wasm-code-gc");
  done = true;
}
