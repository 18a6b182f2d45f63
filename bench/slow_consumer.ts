/**
 * Slow consumer: a handler that sends as fast as it may to a client that never
 * reads. Peak RSS growth of the server process, raw runtime vs wsport, on Deno
 * and on Bun, same run. Run: `npm run bench:memory` (add `-- --seconds N`).
 *
 * The client is a Node process that completes the handshake and stops reading,
 * so kernel buffers fill and the server must buffer or wait.
 */
import { binaries, kill, Lines, root, rssBytes, type Runtime, sleep, spawn } from "./lib/processes.ts";

const seconds = Number(Deno.args[Deno.args.indexOf("--seconds") + 1]) || 3;
/** How each runtime runs the server (this bench measures Deno and Bun, below). */
const runArgs: Record<Runtime, string[]> = { deno: ["run", "-A"], bun: [], node: [] };

/** The server's RSS; 0 once it has gone. */
function rssMiB(pid: number): number {
  try {
    return rssBytes(pid) / 2 ** 20;
  } catch {
    return 0;
  }
}

async function measure(runtime: Runtime, mode: string) {
  const server = spawn(binaries[runtime], [...runArgs[runtime], `${root}bench/slow_consumer_server.ts`], {
    env: { MODE: mode, DURATION: String(seconds * 1000) },
    stderr: "inherit",
  });
  server.stdin.close();
  const lines = new Lines(server.stdout);
  const first = await lines.next(20_000);
  if (!first?.startsWith("port ")) {
    await kill(server);
    throw new Error(`${runtime} ${mode} slow-consumer server did not start: ${first}`);
  }
  const port = Number(first.slice(5));
  // The server prints what it sent when its firehose ends; a server whose event loop starves prints nothing.
  const report = lines.next(60_000);
  await sleep(300);
  const baseline = rssMiB(server.pid);
  const client = spawn("node", [`${root}tests/fixtures/non_reader.mjs`, String(port), "/"], {
    stderr: "inherit",
  });
  let peak = baseline;
  const deadline = Date.now() + seconds * 1000 + 300;
  while (Date.now() < deadline) {
    peak = Math.max(peak, rssMiB(server.pid));
    await sleep(50);
  }
  await kill(client);
  await sleep(200);
  await kill(server);
  const line = await report;
  const result: { sentMiB: number; dropped: number } | undefined = line?.startsWith("{")
    ? JSON.parse(line)
    : undefined;
  return { runtime, mode, baseline, peak, growth: peak - baseline, result };
}

const rows = [];
for (const runtime of ["deno", "bun"] as const) {
  for (const mode of ["raw", "wsport"]) rows.push(await measure(runtime, mode));
}

console.log(`\nslow consumer: ${seconds} s firehose of 16 KiB chunks to a client that never reads\n`);
console.log("| runtime | server | baseline RSS | peak RSS | growth | sent by handler | dropped sends |");
console.log("| ------- | ------ | ------------ | -------- | ------ | --------------- | ------------- |");
for (const row of rows) {
  const sent = row.result ? `${row.result.sentMiB} MiB` : "(event loop starved)";
  const dropped = row.result ? String(row.result.dropped) : "?";
  console.log(
    `| ${row.runtime} | ${row.mode} | ${row.baseline.toFixed(1)} MiB | ${row.peak.toFixed(1)} MiB | +${
      row.growth.toFixed(1)
    } MiB | ${sent} | ${dropped} |`,
  );
}
console.log(
  JSON.stringify({
    results: rows.map(({ runtime, mode, growth }) => ({ runtime, mode, growthMiB: +growth.toFixed(1) })),
  }),
);
