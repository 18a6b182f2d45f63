/**
 * The slow-consumer workload: bench/slow_consumer.ts (peak RSS growth of a
 * server that sends to a client that never reads), run as it is, its JSON
 * last line recorded for every runtime and implementation it measured.
 *
 * @module
 */
import { binaries, exitWithin, type Runtime, spawn, tail } from "./processes.ts";
import { log } from "./report.ts";
import { record, series } from "./samples.ts";
import type { Impl } from "./servers.ts";

export async function slowConsumer(sizes: { seconds: number; reps: number }) {
  series.set("slow", {
    workload: `slow consumer: peak RSS growth (${sizes.seconds} s firehose to a non-reader)`,
    unit: "MiB",
    lowerIsBetter: true,
  });
  for (let rep = 0; rep < sizes.reps; rep++) {
    const child = spawn(binaries.deno, [
      "run",
      "-A",
      "--no-lock",
      "bench/slow_consumer.ts",
      "--seconds",
      String(sizes.seconds),
    ]);
    child.stdin.close();
    const stderr = tail(child.stderr);
    const output = new Response(child.stdout).text();
    await exitWithin(child, 120_000);
    const text = await output;
    const last = text.trim().split("\n").at(-1) ?? "";
    try {
      const { results } = JSON.parse(last) as {
        results: { runtime: Runtime; mode: Impl; growthMiB: number }[];
      };
      for (const row of results) {
        record("slow", row.runtime, row.mode, { value: row.growthMiB, problems: [] });
      }
      log(`  slow consumer: ${last}`);
    } catch {
      log(`  slow consumer failed: ${stderr()}`);
    }
  }
}
