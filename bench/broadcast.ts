/**
 * Broadcast fan-out: 500 clients, 1,000 publishes of 64 bytes; deliveries per
 * second for raw Bun `server.publish` vs wsport on Bun, and a raw Deno send
 * loop vs wsport on Deno, in the same run (crossws and Hono beside them).
 * `npm run bench:broadcast` (extra flags go to bench/run.ts, e.g. `--reps 3`).
 *
 * It is the broadcast workload of bench/run.ts, run alone at full size.
 *
 * @module
 */
const run = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./run.ts", import.meta.url).pathname,
    "--workloads",
    "broadcast",
    ...Deno.args,
  ],
  stdout: "inherit",
  stderr: "inherit",
});
Deno.exit((await run.output()).code);
