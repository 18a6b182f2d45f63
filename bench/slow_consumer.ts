/**
 * Slow consumer: a handler that sends as fast as it may to a client that never
 * reads. Peak RSS growth of the server process, raw runtime vs wsport, on Deno
 * and on Bun, same run. Run: `npm run bench:memory` (add `-- --seconds N`).
 *
 * The client is a Node process that completes the handshake and stops reading,
 * so kernel buffers fill and the server must buffer or wait.
 */
import process from "node:process";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const seconds = Number(process.argv[process.argv.indexOf("--seconds") + 1]) || 3;
const runtimes = {
  deno: [`${root}node_modules/.bin/deno`, "run", "-A"],
  bun: [`${root}node_modules/.bin/bun`],
};

function rssMiB(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function lines(stream: NodeJS.ReadableStream, onLine: (line: string) => void) {
  let buffer = "";
  stream.on("data", (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      onLine(buffer.slice(0, newline));
      buffer = buffer.slice(newline + 1);
    }
  });
}

async function measure(runtime: keyof typeof runtimes, mode: string) {
  const [command, ...args] = runtimes[runtime];
  const server = spawn(command, [...args, `${root}bench/slow_consumer_server.ts`], {
    env: { ...process.env, MODE: mode, DURATION: String(seconds * 1000) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let result: { sentMiB: number; dropped: number } | undefined;
  const port = await new Promise<number>((resolve) => {
    lines(server.stdout!, (line) => {
      if (line.startsWith("port ")) resolve(Number(line.slice(5)));
      else if (line.startsWith("{")) result = JSON.parse(line);
    });
  });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const baseline = rssMiB(server.pid!);
  const client = spawn("node", [`${root}tests/fixtures/non_reader.mjs`, String(port), "/"], {
    stdio: ["pipe", "ignore", "inherit"],
  });
  let peak = baseline;
  const deadline = Date.now() + seconds * 1000 + 300;
  while (Date.now() < deadline) {
    peak = Math.max(peak, rssMiB(server.pid!));
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  client.kill("SIGKILL");
  await new Promise((resolve) => setTimeout(resolve, 200));
  server.kill("SIGKILL");
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
