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
    "wsport: createServer() embeds in Deno and Bun (serve() also runs on Node; Workers: wsport/workers)",
  );
}
