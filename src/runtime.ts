/**
 * Picks the adapter for the runtime the code is running on.
 *
 * @module
 */
import type { Adapter } from "./adapter.ts";
import { bunAdapter } from "./adapters/bun.ts";
import { denoAdapter } from "./adapters/deno.ts";

/** Returns the adapter for the current runtime, or throws naming the runtimes supported. */
export function detectAdapter(): Adapter {
  if ("Bun" in globalThis) return bunAdapter;
  if ("Deno" in globalThis) return denoAdapter;
  throw new Error(
    "wsport: no adapter for this runtime; serve() runs on Deno and Bun (use createServer().fetch elsewhere)",
  );
}
