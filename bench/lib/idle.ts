/**
 * The idle-memory workload: server RSS (and JS heap) per connection, from
 * the delta between before and after opening thousands of idle connections.
 *
 * @module
 */
import { maxOpenFiles, rssBytes, type Runtime, sleep } from "./processes.ts";
import type { Workload } from "./runner.ts";
import { notes, problemsOf } from "./samples.ts";
import { type ServerProcess, wsUrl } from "./servers.ts";

/** Collects garbage in the server, then reads its RSS (from /proc) and its JS heap (as it reports it). */
async function collect(server: ServerProcess): Promise<{ rss: number; heap: number }> {
  const { heapUsed } = await fetch(`http://127.0.0.1:${server.port}/__gc`).then((response) =>
    response.json()
  );
  await sleep(200);
  return { rss: rssBytes(server.pid), heap: heapUsed };
}

export function idleWorkload(sizes: { count: number; reps: number }): Workload {
  // Each runtime starts from the full count; one lowered by the open-files limit holds for its later runs.
  const counts: Partial<Record<Runtime, number>> = {};
  return {
    name: "idle",
    series: {
      idle: {
        workload: `idle memory per connection (server RSS delta at ${sizes.count} connections)`,
        unit: "bytes/conn",
        lowerIsBetter: true,
      },
    },
    reps: sizes.reps,
    peers: false,
    ownServer: true,
    async run(load, server) {
      let count = counts[server.runtime] ?? sizes.count;
      const limit = Math.min(maxOpenFiles(server.pid), maxOpenFiles(load.pid));
      if (limit < count + 200) {
        const lowered = Math.max(100, limit - 200);
        notes.push(
          `idle memory: open-files limit ${limit} refused ${count} connections; measured ${lowered}`,
        );
        count = counts[server.runtime] = lowered;
      }
      const url = wsUrl(server, "/idle");
      // Warm the upgrade path, so that the delta holds connections and not compiled code.
      await load.split({ cmd: "open", url, count: 200, concurrency: 50 }, "count");
      await load.all({ cmd: "close" });
      await sleep(300);
      const before = await collect(server);
      const opened = await load.split({ cmd: "open", url, count, concurrency: 100 }, "count", 120_000);
      await sleep(500);
      const after = await collect(server);
      const closed = await load.all({ cmd: "close" }, 60_000);
      const problems = problemsOf(opened);
      if (opened.failed) problems.push(`${opened.failed} of ${count} connections failed`);
      if (closed.notClosed) problems.push(`${closed.notClosed} connections did not close`);
      const perConnection = (after.rss - before.rss) / (opened.opened || NaN);
      const heapPerConnection = (after.heap - before.heap) / (opened.opened || NaN);
      return {
        samples: {
          idle: {
            value: perConnection,
            extra: {
              rssBeforeMiB: before.rss / 2 ** 20,
              rssAfterMiB: after.rss / 2 ** 20,
              heapPerConnection,
              connections: opened.opened,
            },
            problems,
          },
        },
        progress: `${opened.opened} conns, RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${
          (after.rss / 2 ** 20).toFixed(1)
        } MiB = ${perConnection.toFixed(0)} B/conn (JS heap ${heapPerConnection.toFixed(0)} B/conn) ${
          problems.join("; ")
        }`,
      };
    },
  };
}
