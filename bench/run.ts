/**
 * wsport against the raw runtimes, same run, same machine: `npm run bench`
 * (add `-- --quick` for a run under two minutes, `-- --json` for one JSON
 * object as the last line of stdout).
 *
 * The driver runs on Deno. Servers are separate processes
 * (`bench/servers/{raw,wsport,crossws,hono}.ts`, under deno and under bun);
 * the load generator is `bench/load.ts` under Deno, one long-lived process.
 * Where `taskset` works, servers are pinned to one core and the load
 * generator (and this driver) to another. Every measured window reads the
 * server's CPU time from `/proc/<pid>/stat`: the table gives CPU per message
 * next to throughput and flags runs where the server core was under 90 %
 * busy as client-bound.
 *
 * Workloads (raw and wsport alternate, A B A B, `--reps` pairs; medians and
 * min–max spreads are reported, and the ratio wsport/raw):
 * 1. echo throughput: 100 connections × 50 messages in flight; 32 B text,
 *    1 KiB binary, 16 KiB binary (crossws and Hono too);
 * 2. echo latency: 100 connections × 1 message in flight; p50/p99 round trip;
 * 3. broadcast: 500 clients, 1,000 publishes of 64 B (raw Bun: native
 *    `server.publish`; raw Deno: a send loop; wsport: `server.publish`;
 *    crossws: its pub/sub; Hono: a send loop);
 * 4. connection churn: upgrades per second through a handshake hook that
 *    attaches data;
 * 5. idle memory: server RSS delta per connection at 5,000 connections;
 * 6. slow consumer: bench/slow_consumer.ts (peak RSS growth).
 *
 * Flags: `--quick`, `--json`, `--reps N`, `--runtimes deno,bun`,
 * `--workloads echo,latency,broadcast,churn,idle,slow`, `--no-peers`.
 * For experiments, `WSPORT_OPTIONS='{"maxQueue":1024}'` in the environment
 * overrides the wsport servers' options (the report says so).
 * `RAW_KEEPS_HEADERS=1` makes the raw servers keep a copy of each upgrade
 * request's URL and headers, as wsport does for `ws.request` (idle memory).
 *
 * @module
 */

const args = Deno.args;
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string) => {
  const index = args.indexOf(`--${name}`);
  return index >= 0 ? args[index + 1] : undefined;
};

const quick = flag("quick");
const json = flag("json");
const root = new URL("..", import.meta.url).pathname;

const config = quick
  ? {
    reps: 3,
    echo: { warmupMs: 100, windowMs: 300 },
    latency: { warmupMs: 100, windowMs: 300 },
    broadcast: { clients: 500, publishes: 100, size: 64 },
    churn: { concurrency: 16, warmupMs: 100, windowMs: 300 },
    idle: { count: 5000, reps: 1 },
    slowSeconds: 1,
  }
  : {
    reps: 5,
    echo: { warmupMs: 1000, windowMs: 3000 },
    latency: { warmupMs: 1000, windowMs: 3000 },
    broadcast: { clients: 500, publishes: 1000, size: 64 },
    churn: { concurrency: 16, warmupMs: 500, windowMs: 2000 },
    idle: { count: 5000, reps: 3 },
    slowSeconds: 3,
  };
if (option("reps")) config.reps = Math.max(1, Number(option("reps")));

const runtimes = (option("runtimes") ?? "deno,bun").split(",") as Runtime[];
const workloads = new Set((option("workloads") ?? "echo,latency,broadcast,churn,idle,slow").split(","));

type Runtime = "deno" | "bun";
type Impl = "raw" | "wsport" | "crossws" | "hono";

const log = (message: string) => console.error(message);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

// ------------------------------------------------------------------ machine

const binaries: Record<Runtime, string> = {
  deno: exists(`${root}node_modules/.bin/deno`) ? `${root}node_modules/.bin/deno` : Deno.execPath(),
  bun: exists(`${root}node_modules/.bin/bun`) ? `${root}node_modules/.bin/bun` : "bun",
};

async function capture(command: string, commandArgs: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const output = await new Deno.Command(command, { args: commandArgs, stdin: "null", stderr: "null" })
      .output();
    return { ok: output.success, out: new TextDecoder().decode(output.stdout).trim() };
  } catch {
    return { ok: false, out: "" };
  }
}

const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown";
const clkTck = Number((await capture("getconf", ["CLK_TCK"])).out) || 100;
const versions: Record<Runtime, string> = {
  deno: (await capture(binaries.deno, ["--version"])).out.split("\n")[0].replace(/^deno /, ""),
  bun: (await capture(binaries.bun, ["--version"])).out,
};
const wsportOptions = Deno.env.get("WSPORT_OPTIONS");
const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
const loadBefore = loadavg();
const notes: string[] = [];
if (quick) {
  notes.push(
    "quick mode: 300 ms windows (full: 3 s), broadcast 100 publishes (full: 1,000), idle memory and slow " +
      "consumer one pair each (full: 3); numbers are for checking the harness, not for quoting",
  );
}
if (wsportOptions) notes.push(`wsport servers ran with WSPORT_OPTIONS=${wsportOptions}, not the defaults`);
if (Deno.env.get("RAW_KEEPS_HEADERS") === "1") {
  notes.push("raw servers kept a copy of each upgrade request's URL and headers (RAW_KEEPS_HEADERS=1)");
}

// Pin servers to one core, the load generators (and this driver) to others: one load generator
// on 2-3 cores, up to 3 on bigger machines (`--load-procs N`), each on its own core.
const pinning = cores >= 2 && (await capture("taskset", ["-c", "0", "true"])).ok;
const serverCore = cores - 1;
const loadProcs = Math.max(1, Number(option("load-procs") ?? (cores >= 4 ? Math.min(3, cores - 2) : 1)));
const clientCores = Array.from({ length: loadProcs }, (_, i) => i % Math.max(1, cores - 1));
const clientCore = clientCores[0];
if (pinning) await capture("taskset", ["-pc", String(clientCore), String(Deno.pid)]);
else notes.push("taskset unavailable or a single core: processes are not pinned");

// ---------------------------------------------------------------- processes

/** Reads lines from a child's stdout, one `next()` at a time. */
class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  async next(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const newline = this.#buffer.indexOf("\n");
      if (newline >= 0) {
        const line = this.#buffer.slice(0, newline);
        this.#buffer = this.#buffer.slice(newline + 1);
        return line;
      }
      const left = deadline - Date.now();
      if (left <= 0) return undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      const chunk = await Promise.race([
        this.#reader.read(),
        new Promise<"timeout">((resolve) => timer = setTimeout(() => resolve("timeout"), left)),
      ]);
      clearTimeout(timer);
      if (chunk === "timeout") return undefined;
      if (chunk.done) return undefined;
      this.#buffer += chunk.value;
    }
  }
}

/** Keeps the last few KiB of a child's stderr, for error messages. */
function tail(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text = (text + chunk).slice(-4000);
  })().catch(() => {});
  return () => text.trim();
}

const children = new Set<Deno.ChildProcess>();

/** Raises the open-files limit (as far as the hard limit allows), pins to `core`, and execs. */
function spawn(
  core: number | undefined,
  command: string,
  commandArgs: string[],
  env: Record<string, string> = {},
) {
  const pin = pinning && core !== undefined ? ["taskset", "-c", String(core)] : [];
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
      "sh",
      ...pin,
      command,
      ...commandArgs,
    ],
    cwd: root,
    env,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  children.add(child);
  return child;
}

async function kill(child: Deno.ChildProcess): Promise<void> {
  if (!children.delete(child)) return;
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status;
}

async function killAll(): Promise<void> {
  await Promise.all([...children].map(kill));
}

function maxOpenFiles(pid: number): number {
  try {
    const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
    return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? Infinity);
  } catch {
    return Infinity;
  }
}

function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}

interface ServerProcess {
  runtime: Runtime;
  impl: Impl;
  child: Deno.ChildProcess;
  pid: number;
  port: number;
  stderr: () => string;
}

async function startServer(runtime: Runtime, impl: Impl): Promise<ServerProcess> {
  const script = `bench/servers/${impl}.ts`;
  const commandArgs = runtime === "deno"
    ? ["run", "-A", "--no-lock", "--v8-flags=--expose-gc", script]
    : [script];
  const child = spawn(serverCore, binaries[runtime], commandArgs);
  child.stdin.close();
  const stderr = tail(child.stderr);
  const line = await new Lines(child.stdout).next(20_000);
  if (!line) {
    await kill(child);
    throw new Error(`${runtime} ${impl} server did not start: ${stderr()}`);
  }
  const { port, pid } = JSON.parse(line);
  if (pid !== child.pid) {
    notes.push(`${runtime} ${impl}: server pid ${pid} is not the spawned pid ${child.pid}`);
  }
  return { runtime, impl, child, pid, port, stderr };
}

/** The load generator: one JSON command per line in, one JSON answer per line out. */
class LoadGenerator {
  #child!: Deno.ChildProcess;
  #lines!: Lines;
  #writer!: WritableStreamDefaultWriter<Uint8Array>;
  stderr!: () => string;
  pid!: number;

  #core: number;

  constructor(core: number) {
    this.#core = core;
    this.#start();
  }

  #start() {
    this.#child = spawn(this.#core, binaries.deno, ["run", "-A", "--no-lock", "bench/load.ts"], {
      CLK_TCK: String(clkTck),
    });
    this.pid = this.#child.pid;
    this.#lines = new Lines(this.#child.stdout);
    this.#writer = this.#child.stdin.getWriter();
    this.stderr = tail(this.#child.stderr);
  }

  // deno-lint-ignore no-explicit-any
  async run(command: Record<string, unknown>, timeoutMs = 120_000): Promise<any> {
    await this.#writer.write(new TextEncoder().encode(JSON.stringify(command) + "\n"));
    const line = await this.#lines.next(timeoutMs);
    if (line === undefined) {
      // Stuck or dead: replace it, so that the rest of the run goes on.
      const stderr = this.stderr();
      await kill(this.#child);
      this.#start();
      return { ok: false, error: `load generator gave no answer in ${timeoutMs} ms ${stderr}` };
    }
    return JSON.parse(line);
  }

  async stop() {
    await this.#writer.close().catch(() => {});
    await Promise.race([this.#child.status, sleep(2000)]);
    await kill(this.#child);
  }
}

/** Merges the answers of several load generators that shared one command. */
// deno-lint-ignore no-explicit-any
function merge(answers: any[]): any {
  if (answers.length === 1) return answers[0];
  const failed = answers.find((answer) => !answer.ok);
  if (failed) return failed;
  const [first] = answers;
  const merged = { ...first };
  const sum = (key: string) => answers.reduce((total, answer) => total + (answer[key] ?? 0), 0);
  for (const key of ["connections", "failedConnections", "messages", "upgrades", "failed", "wrongSize"]) {
    if (key in first) merged[key] = sum(key);
  }
  for (const key of ["notClosed", "opened", "closed", "rate", "samples"]) {
    if (key in first) merged[key] = sum(key);
  }
  for (const key of ["unexpectedCloses", "errors"]) {
    if (!(key in first)) continue;
    merged[key] = {};
    for (const answer of answers) {
      for (const [k, v] of Object.entries(answer[key] ?? {})) {
        merged[key][k] = (merged[key][k] ?? 0) + (v as number);
      }
    }
  }
  if ("clientBusy" in first) merged.clientBusy = Math.max(...answers.map((answer) => answer.clientBusy));
  // Server CPU comes from the first generator's window; the messages in it, from every generator's rate.
  if (first.serverCpuSeconds !== undefined && merged.rate) {
    merged.serverCpuPerMsgUs = +(first.serverCpuSeconds / (merged.rate * first.seconds) * 1e6).toFixed(3);
  }
  if (first.histogram) {
    const buckets = new Map<number, number>();
    for (const answer of answers) {
      for (const [k, v] of Object.entries(answer.histogram as Record<string, number>)) {
        buckets.set(Number(k), (buckets.get(Number(k)) ?? 0) + v);
      }
    }
    const sorted = [...buckets].sort((a, b) => a[0] - b[0]);
    const total = sorted.reduce((t, [, v]) => t + v, 0);
    const at = (p: number) => {
      let seen = 0;
      for (const [bucket, count] of sorted) if ((seen += count) > p * total) return (bucket + 0.5) / 100;
      return NaN;
    };
    merged.p50Ms = at(0.5);
    merged.p99Ms = at(0.99);
  }
  return merged;
}

/** The load generators: commands split between them (connections, loops) and their answers merged. */
class Load {
  readonly generators = clientCores.map((core) => new LoadGenerator(core));
  get pid(): number {
    return this.generators[0].pid;
  }
  /** Runs on the first generator only (broadcast needs every client in one process). */
  // deno-lint-ignore no-explicit-any
  run(command: Record<string, unknown>, timeoutMs?: number): Promise<any> {
    return this.generators[0].run(command, timeoutMs);
  }
  /** Splits `command[field]` between the generators and merges the answers. */
  // deno-lint-ignore no-explicit-any
  async split(command: Record<string, unknown>, field: string, timeoutMs?: number): Promise<any> {
    const total = command[field] as number;
    const k = this.generators.length;
    const answers = await Promise.all(
      this.generators.map((generator, i) =>
        generator.run({ ...command, [field]: Math.floor(total / k) + (i < total % k ? 1 : 0) }, timeoutMs)
      ),
    );
    return merge(answers);
  }
  /** Runs on every generator and merges the answers. */
  // deno-lint-ignore no-explicit-any
  async all(command: Record<string, unknown>, timeoutMs?: number): Promise<any> {
    return merge(await Promise.all(this.generators.map((generator) => generator.run(command, timeoutMs))));
  }
  async stop() {
    await Promise.all(this.generators.map((generator) => generator.stop()));
  }
}

// ----------------------------------------------------------------- samples

interface Sample {
  value: number;
  cpuPerMsgUs?: number | null;
  serverBusy?: number;
  clientBusy?: number;
  extra?: Record<string, number | null>;
  problems: string[];
}

/** samples[key][runtime][impl] */
const samples = new Map<string, Map<Runtime, Map<Impl, Sample[]>>>();
const meta = new Map<string, { workload: string; unit: string; lowerIsBetter: boolean; cpu?: string }>();

function record(key: string, runtime: Runtime, impl: Impl, sample: Sample) {
  if (!samples.has(key)) samples.set(key, new Map());
  const byRuntime = samples.get(key)!;
  if (!byRuntime.has(runtime)) byRuntime.set(runtime, new Map());
  const byImpl = byRuntime.get(runtime)!;
  if (!byImpl.has(impl)) byImpl.set(impl, []);
  byImpl.get(impl)!.push(sample);
}

/** What every windowed workload records beside its value: server CPU, busy shares, problems. */
// deno-lint-ignore no-explicit-any
function measured(answer: any) {
  return {
    cpuPerMsgUs: answer.serverCpuPerMsgUs,
    serverBusy: answer.serverBusy,
    clientBusy: answer.clientBusy,
    problems: problemsOf(answer),
  };
}

/** Problems a load-generator answer reports: failed connections, wrong echoes, unexpected closes. */
// deno-lint-ignore no-explicit-any
function problemsOf(answer: any): string[] {
  const problems: string[] = [];
  if (!answer.ok) return [`error: ${answer.error}`];
  if (answer.failedConnections) problems.push("some connections failed to open");
  if (answer.failed) {
    problems.push(`handshakes failed: ${Object.keys(answer.errors ?? {}).sort().join(", ")}`);
  }
  if (answer.wrongSize) problems.push("echoes of the wrong size");
  // Codes only (no counts), so that the table can say in how many runs each kind happened.
  const closes = Object.keys(answer.unexpectedCloses ?? {}).map((k) => k === "0" ? "0 (no close frame)" : k)
    .sort();
  if (closes.length) problems.push(`connections closed by the server: ${closes.join(", ")}`);
  if (answer.notClosed) problems.push("connections that did not close when asked");
  if (answer.expected !== undefined && answer.delivered < answer.expected) {
    problems.push("not every delivery arrived");
  }
  if (answer.serverReport?.skipped) problems.push("the server skipped slow subscribers");
  return problems;
}

// --------------------------------------------------------------- workloads

const PAYLOADS = [
  { key: "echo-text-32", label: "32 B text", kind: "text", size: 32 },
  { key: "echo-binary-1k", label: "1 KiB binary", kind: "binary", size: 1024 },
  { key: "echo-binary-16k", label: "16 KiB binary", kind: "binary", size: 16 * 1024 },
] as const;

async function echoWorkloads(load: Load, runtime: Runtime, servers: Map<Impl, ServerProcess>) {
  const impls = [...servers.keys()];
  for (const payload of PAYLOADS) {
    meta.set(payload.key, {
      workload: `echo throughput, ${payload.label} (100 conns × 50 in flight)`,
      unit: "msg/s",
      lowerIsBetter: false,
      cpu: "server CPU µs/msg",
    });
    for (let rep = 0; rep < config.reps; rep++) {
      for (const impl of impls) {
        const server = servers.get(impl)!;
        const answer = await load.split({
          cmd: "echo",
          url: `ws://127.0.0.1:${server.port}/echo`,
          pid: server.pid,
          conns: 100,
          inflight: 50,
          kind: payload.kind,
          size: payload.size,
          ...config.echo,
        }, "conns");
        record(payload.key, runtime, impl, { value: answer.rate ?? NaN, ...measured(answer) });
        progress(payload.key, runtime, impl, answer);
      }
    }
  }
}

async function latencyWorkload(load: Load, runtime: Runtime, servers: Map<Impl, ServerProcess>) {
  meta.set("latency-p50", {
    workload: "echo latency p50 (100 conns × 1 in flight, 32 B)",
    unit: "ms",
    lowerIsBetter: true,
  });
  meta.set("latency-p99", {
    workload: "echo latency p99 (100 conns × 1 in flight, 32 B)",
    unit: "ms",
    lowerIsBetter: true,
  });
  for (let rep = 0; rep < config.reps; rep++) {
    for (const impl of ["raw", "wsport"] as const) {
      const server = servers.get(impl)!;
      const answer = await load.split({
        cmd: "echo",
        url: `ws://127.0.0.1:${server.port}/echo`,
        pid: server.pid,
        conns: 100,
        inflight: 1,
        kind: "text",
        size: 32,
        ...config.latency,
      }, "conns");
      record("latency-p50", runtime, impl, { value: answer.p50Ms ?? NaN, ...measured(answer) });
      record("latency-p99", runtime, impl, { value: answer.p99Ms ?? NaN, ...measured(answer) });
      progress("latency", runtime, impl, answer);
    }
  }
}

async function broadcastWorkload(load: Load, runtime: Runtime, servers: Map<Impl, ServerProcess>) {
  const { clients, publishes, size } = config.broadcast;
  meta.set("broadcast", {
    workload: `broadcast fan-out (${clients} clients × ${publishes} publishes × ${size} B)`,
    unit: "deliveries/s",
    lowerIsBetter: false,
    cpu: "server CPU µs/delivery",
  });
  for (let rep = 0; rep < config.reps; rep++) {
    for (const impl of servers.keys()) {
      const server = servers.get(impl)!;
      const answer = await load.run({
        cmd: "broadcast",
        url: `ws://127.0.0.1:${server.port}/broadcast`,
        pid: server.pid,
        clients,
        publishes,
        size,
        stallMs: 2000,
      });
      record("broadcast", runtime, impl, { value: answer.rate ?? NaN, ...measured(answer) });
      progress("broadcast", runtime, impl, answer);
    }
  }
}

async function churnWorkload(load: Load, runtime: Runtime, servers: Map<Impl, ServerProcess>) {
  meta.set("churn", {
    workload: `connection churn (open, close; ${config.churn.concurrency} at a time; hook attaches data)`,
    unit: "upgrades/s",
    lowerIsBetter: false,
    cpu: "server CPU µs/upgrade",
  });
  for (let rep = 0; rep < config.reps; rep++) {
    for (const impl of ["raw", "wsport"] as const) {
      const server = servers.get(impl)!;
      const answer = await load.split({
        cmd: "churn",
        url: `ws://127.0.0.1:${server.port}/churn`,
        pid: server.pid,
        ...config.churn,
      }, "concurrency");
      record("churn", runtime, impl, { value: answer.rate ?? NaN, ...measured(answer) });
      progress("churn", runtime, impl, answer);
    }
  }
}

/** Collects garbage in the server, then reads its RSS (from /proc) and its JS heap (as it reports it). */
async function collect(server: ServerProcess): Promise<{ rss: number; heap: number }> {
  const { heapUsed } = await fetch(`http://127.0.0.1:${server.port}/__gc`).then((response) =>
    response.json()
  );
  await sleep(200);
  return { rss: rssBytes(server.pid), heap: heapUsed };
}

async function idleWorkload(load: Load, runtime: Runtime) {
  let count = config.idle.count;
  meta.set("idle", {
    workload: `idle memory per connection (server RSS delta at ${count} connections)`,
    unit: "bytes/conn",
    lowerIsBetter: true,
  });
  for (let rep = 0; rep < config.idle.reps; rep++) {
    for (const impl of ["raw", "wsport"] as const) {
      const server = await startServer(runtime, impl);
      try {
        const limit = Math.min(maxOpenFiles(server.pid), maxOpenFiles(load.pid));
        if (limit < count + 200) {
          const lowered = Math.max(100, limit - 200);
          notes.push(
            `idle memory: open-files limit ${limit} refused ${count} connections; measured ${lowered}`,
          );
          count = lowered;
        }
        const url = `ws://127.0.0.1:${server.port}/idle`;
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
        record("idle", runtime, impl, {
          value: perConnection,
          extra: {
            rssBeforeMiB: before.rss / 2 ** 20,
            rssAfterMiB: after.rss / 2 ** 20,
            heapPerConnection,
            connections: opened.opened,
          },
          problems,
        });
        log(
          `  idle ${runtime} ${impl}: ${opened.opened} conns, RSS ${(before.rss / 2 ** 20).toFixed(1)} → ${
            (after.rss / 2 ** 20).toFixed(1)
          } MiB = ${perConnection.toFixed(0)} B/conn (JS heap ${heapPerConnection.toFixed(0)} B/conn) ${
            problems.join("; ")
          }`,
        );
      } finally {
        await kill(server.child);
      }
    }
  }
}

async function slowConsumer() {
  meta.set("slow", {
    workload: `slow consumer: peak RSS growth (${config.slowSeconds} s firehose to a non-reader)`,
    unit: "MiB",
    lowerIsBetter: true,
  });
  for (let rep = 0; rep < (quick ? 1 : 3); rep++) {
    const child = spawn(undefined, binaries.deno, [
      "run",
      "-A",
      "--no-lock",
      "bench/slow_consumer.ts",
      "--seconds",
      String(config.slowSeconds),
    ]);
    child.stdin.close();
    const stderr = tail(child.stderr);
    const output = new Response(child.stdout).text();
    const status = await Promise.race([child.status, sleep(120_000).then(() => undefined)]);
    children.delete(child);
    if (!status) {
      children.add(child);
      await kill(child);
    }
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

// deno-lint-ignore no-explicit-any
function progress(key: string, runtime: Runtime, impl: Impl, answer: any) {
  const value = answer.p50Ms !== undefined
    ? `p50 ${answer.p50Ms?.toFixed(3)} ms p99 ${answer.p99Ms?.toFixed(3)} ms`
    : `${Math.round(answer.rate ?? NaN)}/s`;
  const problems = problemsOf(answer);
  log(
    `  ${key} ${runtime} ${impl}: ${value}, server ${answer.serverCpuPerMsgUs ?? "?"} µs/msg, busy ${
      pct(answer.serverBusy)
    } (client ${pct(answer.clientBusy)})${problems.length ? " ! " + problems.join("; ") : ""}`,
  );
}

const pct = (x: number | undefined) => x === undefined || Number.isNaN(x) ? "?" : `${Math.round(x * 100)}%`;

// ---------------------------------------------------------------- the run

const peers: Impl[] = [];
if (!flag("no-peers")) {
  if (exists(`${root}node_modules/crossws/package.json`)) peers.push("crossws");
  else notes.push("crossws is not installed (npm ci): no crossws column");
  if (exists(`${root}node_modules/hono/package.json`)) peers.push("hono");
  else notes.push("hono is not installed (npm ci): no Hono column");
}

let exitCode = 0;
const started = performance.now();
const cleanup = async () => {
  await killAll();
  Deno.exit(130);
};
Deno.addSignalListener("SIGINT", cleanup);
Deno.addSignalListener("SIGTERM", cleanup);

log(
  `wsport bench (${
    quick ? "quick" : "full"
  }): ${cores} × ${model}; deno ${versions.deno}, bun ${versions.bun}; ` +
    (pinning
      ? `servers on core ${serverCore}, load generator(s) on core(s) ${clientCores.join(",")}`
      : "not pinned"),
);
const load = new Load();
try {
  for (const runtime of runtimes) {
    const serverWork = ["echo", "latency", "broadcast", "churn"].some((w) => workloads.has(w));
    if (serverWork) {
      const servers = new Map<Impl, ServerProcess>();
      try {
        for (const impl of ["raw", "wsport", ...peers] as Impl[]) {
          servers.set(impl, await startServer(runtime, impl));
        }
        // One short run per server, so that the first measured run is not the JIT's warm-up.
        for (const server of servers.values()) {
          await load.split({
            cmd: "echo",
            url: `ws://127.0.0.1:${server.port}/echo`,
            pid: server.pid,
            conns: 100,
            inflight: 50,
            kind: "text",
            size: 32,
            warmupMs: 0,
            windowMs: quick ? 200 : 1000,
          }, "conns");
        }
        if (workloads.has("echo")) await echoWorkloads(load, runtime, servers);
        if (workloads.has("latency")) await latencyWorkload(load, runtime, servers);
        if (workloads.has("broadcast")) await broadcastWorkload(load, runtime, servers);
        if (workloads.has("churn")) await churnWorkload(load, runtime, servers);
        const wsport = servers.get("wsport")!;
        const counters = await fetch(`http://127.0.0.1:${wsport.port}/__counters`).then((r) => r.json());
        const drops = counters.droppedMessages + Object.values(counters.closed as Record<string, number>)
          .reduce((a, b) => a + b, 0);
        if (drops) {
          notes.push(
            `wsport on ${runtime}: counters report limit closes or drops ${JSON.stringify(counters)}`,
          );
        }
      } finally {
        for (const server of servers.values()) await kill(server.child);
      }
    }
    if (workloads.has("idle")) await idleWorkload(load, runtime);
  }
  await load.stop();
  if (workloads.has("slow")) await slowConsumer();
} catch (error) {
  log(`bench failed: ${error instanceof Error ? error.stack : error}`);
  exitCode = 1;
} finally {
  await killAll();
}

// ----------------------------------------------------------------- report

const median = (values: number[]) => {
  const sorted = values.filter((v) => !Number.isNaN(v) && v !== null && v !== undefined).sort((a, b) =>
    a - b
  );
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const round = (x: number, digits = 3) => Number.isFinite(x) ? +x.toPrecision(digits + 2) : null;

interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
  cpuPerMsgUs: number;
  serverBusy: number;
  clientBound: number;
  problems: string[];
}

function summarize(list: Sample[] | undefined): Summary | undefined {
  if (!list?.length) return undefined;
  const values = list.map((s) => s.value).filter(Number.isFinite);
  return {
    median: median(values),
    min: Math.min(...values),
    max: Math.max(...values),
    n: list.length,
    cpuPerMsgUs: median(list.map((s) => s.cpuPerMsgUs ?? NaN)),
    serverBusy: median(list.map((s) => s.serverBusy ?? NaN)),
    clientBound: list.filter((s) => s.serverBusy !== undefined && s.serverBusy < 0.9).length,
    problems: [...new Set(list.flatMap((s) => s.problems))].map((problem) =>
      `${problem} (${list.filter((s) => s.problems.includes(problem)).length}/${list.length} runs)`
    ),
  };
}

const results: Record<string, unknown>[] = [];
const tableRows: string[][] = [];
const fmt = (x: number, unit: string) => {
  if (!Number.isFinite(x)) return "–";
  if (unit === "ms") return x.toFixed(3);
  if (unit === "MiB") return x.toFixed(1);
  if (Math.abs(x) >= 1000) return Math.round(x).toLocaleString("en-US");
  return x.toPrecision(3);
};
const spread = (s: Summary | undefined, unit: string) =>
  s ? `${fmt(s.median, unit)} (${fmt(s.min, unit)}–${fmt(s.max, unit)})` : "–";

for (const [key, byRuntime] of samples) {
  const info = meta.get(key)!;
  for (const [runtime, byImpl] of byRuntime) {
    const raw = summarize(byImpl.get("raw"));
    const wsport = summarize(byImpl.get("wsport"));
    const ratio = raw && wsport ? wsport.median / raw.median : NaN;
    const peerResults: Record<string, unknown> = {};
    const peerCells: string[] = [];
    for (const peer of ["crossws", "hono"] as const) {
      const summary = summarize(byImpl.get(peer));
      if (summary && raw) {
        peerResults[peer] = {
          value: round(summary.median),
          min: round(summary.min),
          max: round(summary.max),
          ratio: round(summary.median / raw.median),
          cpuPerMsgUs: round(summary.cpuPerMsgUs),
          cpuRatio: round(summary.cpuPerMsgUs / raw.cpuPerMsgUs),
          serverBusy: round(summary.serverBusy, 2),
        };
      }
      peerCells.push(
        summary && raw
          ? `${fmt(summary.median, info.unit)} (${(summary.median / raw.median).toFixed(2)}×` +
            (info.cpu && Number.isFinite(summary.cpuPerMsgUs)
              ? `; cpu ${(summary.cpuPerMsgUs / raw.cpuPerMsgUs).toFixed(2)}×)`
              : ")")
          : "–",
      );
    }
    const rowNotes: string[] = [];
    for (const [name, s] of [["raw", raw], ["wsport", wsport]] as const) {
      if (s?.clientBound) rowNotes.push(`${name} client-bound in ${s.clientBound}/${s.n}`);
      for (const p of s?.problems ?? []) rowNotes.push(`${name}: ${p}`);
    }
    if (key === "idle" && raw && wsport) {
      const heap = (impl: Impl) =>
        median(samples.get(key)!.get(runtime)!.get(impl)!.map((s) => s.extra?.heapPerConnection ?? NaN));
      rowNotes.unshift(
        `wsport − raw = ${Math.round(wsport.median - raw.median)} B/conn (JS heap: ${
          Math.round(heap("wsport") - heap("raw"))
        } B/conn)`,
      );
    }
    const cpu = info.cpu && raw && wsport
      ? {
        rawCpuPerMsgUs: round(raw.cpuPerMsgUs),
        wsportCpuPerMsgUs: round(wsport.cpuPerMsgUs),
        cpuRatio: round(wsport.cpuPerMsgUs / raw.cpuPerMsgUs),
      }
      : {};
    results.push({
      workload: info.workload,
      runtime,
      raw: round(raw?.median ?? NaN),
      wsport: round(wsport?.median ?? NaN),
      ratio: round(ratio),
      unit: info.unit,
      key,
      rawSpread: raw ? [round(raw.min), round(raw.max)] : null,
      wsportSpread: wsport ? [round(wsport.min), round(wsport.max)] : null,
      runs: Math.max(raw?.n ?? 0, wsport?.n ?? 0),
      ...cpu,
      ...(raw?.serverBusy !== undefined && Number.isFinite(raw.serverBusy)
        ? { serverBusy: { raw: round(raw.serverBusy, 2), wsport: round(wsport?.serverBusy ?? NaN, 2) } }
        : {}),
      clientBound: (raw?.clientBound ?? 0) + (wsport?.clientBound ?? 0) > 0,
      ...(Object.keys(peerResults).length ? { peers: peerResults } : {}),
      ...(rowNotes.length ? { notes: rowNotes } : {}),
    });
    tableRows.push([
      info.workload,
      runtime,
      info.unit,
      spread(raw, info.unit),
      spread(wsport, info.unit),
      Number.isFinite(ratio) ? `**${ratio.toFixed(2)}**` : "–",
      info.cpu && raw && wsport
        ? `${fmt(raw.cpuPerMsgUs, "µs")} / ${fmt(wsport.cpuPerMsgUs, "µs")}` +
          (Number.isFinite(wsport.cpuPerMsgUs / raw.cpuPerMsgUs)
            ? ` (${(wsport.cpuPerMsgUs / raw.cpuPerMsgUs).toFixed(2)}×)`
            : "")
        : "–",
      raw && Number.isFinite(raw.serverBusy) ? `${pct(raw.serverBusy)} / ${pct(wsport?.serverBusy)}` : "–",
      ...(peers.length ? peerCells : []),
      rowNotes.join("; "),
    ]);
  }
}

const loadAfter = loadavg();
const seconds = (performance.now() - started) / 1000;
const machine = {
  cores,
  model,
  deno: versions.deno,
  bun: versions.bun,
  date: new Date().toISOString(),
  mode: quick ? "quick" : "full",
  pinned: pinning ? { server: serverCore, loadGenerators: clientCores } : null,
  loadavg: { before: loadBefore, after: loadAfter },
  seconds: +seconds.toFixed(1),
};

const header = [
  "workload",
  "runtime",
  "unit",
  "raw median (min–max)",
  "wsport median (min–max)",
  "wsport/raw",
  "server CPU µs per msg raw / wsport",
  "server busy raw / wsport",
  ...(peers.length ? ["crossws (×raw)", "Hono (×raw)"] : []),
  "notes",
];
const markdown = [
  `## wsport vs raw runtimes (${machine.mode} run, ${machine.date.slice(0, 10)})`,
  "",
  `${cores} × ${model}; Deno ${versions.deno}, Bun ${versions.bun}; load average ${loadBefore} before, ${loadAfter} after; ` +
  `${config.reps} runs each, raw and wsport alternating; ${machine.seconds} s.` +
  (pinning
    ? ` Servers pinned to core ${serverCore}; ${loadProcs} Deno load generator(s) on core(s) ${
      clientCores.join(", ")
    }.`
    : ""),
  "",
  `| ${header.join(" | ")} |`,
  `| ${header.map(() => "---").join(" | ")} |`,
  ...tableRows.map((row) => `| ${row.join(" | ")} |`),
  "",
  "Ratios are median wsport / median raw: above 1 is better for throughput, below 1 for latency and memory. " +
  '"client-bound": the server core was under 90 % busy, so the load generator, not the server, set the pace.',
  ...notes.map((note) => `- ${note}`),
].join("\n");

if (json) {
  log(markdown);
  console.log(JSON.stringify({ machine, results, notes }));
} else {
  console.log(markdown);
}
Deno.exit(exitCode);
