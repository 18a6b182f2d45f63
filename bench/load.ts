/**
 * The load generator of bench/run.ts: a long-lived Deno process (Deno's
 * WebSocket client drives a server harder than Node's or Bun's) that reads
 * one JSON command per line on stdin and answers one JSON line on stdout.
 *
 * Every measuring command takes the server's `pid` and reads its CPU time
 * (utime + stime from `/proc/<pid>/stat`) at the start and end of the
 * measured window, and its own, so the bench can tell a server-bound run
 * from a client-bound one.
 *
 * Commands (`{ "cmd": ..., ... }`):
 * - `echo`: `conns` connections each keep `inflight` messages in flight;
 *   counts echoes in the window; with `inflight: 1` also per-message round
 *   trips (p50/p99).
 * - `broadcast`: `clients` connections to /broadcast; once all are
 *   subscribed, asks the server to publish `publishes` messages of `size`
 *   bytes and times their delivery to every client.
 * - `churn`: `concurrency` loops that open a connection, close it once open,
 *   and start again; counts opens per second.
 * - `open` / `close`: opens `count` idle connections and keeps them / closes them.
 *
 * @module
 */

const CLK_TCK = Number(Deno.env.get("CLK_TCK") ?? 100);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** CPU seconds (user + system) of a process so far, from `/proc/<pid>/stat`. */
function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

interface Window {
  /** Ends the window: wall seconds, server and client CPU seconds in it. */
  end(): { seconds: number; serverCpu: number; clientCpu: number };
}

function startWindow(pid: number): Window {
  const t0 = performance.now();
  const server0 = cpuSeconds(pid);
  const client0 = cpuSeconds(Deno.pid);
  return {
    end() {
      return {
        seconds: (performance.now() - t0) / 1000,
        serverCpu: cpuSeconds(pid) - server0,
        clientCpu: cpuSeconds(Deno.pid) - client0,
      };
    },
  };
}

/** What every measurement reports about the CPU: per-message cost and how busy each side was. */
function cpuReport(w: { seconds: number; serverCpu: number; clientCpu: number }, messages: number) {
  return {
    seconds: +w.seconds.toFixed(3),
    serverCpuSeconds: +w.serverCpu.toFixed(3),
    serverCpuPerMsgUs: messages > 0 ? +(w.serverCpu / messages * 1e6).toFixed(3) : null,
    serverBusy: +(w.serverCpu / w.seconds).toFixed(3),
    clientBusy: +(w.clientCpu / w.seconds).toFixed(3),
  };
}

/**
 * Opens `count` connections, `concurrency` handshakes at a time; failures are
 * counted, not thrown. `setup` runs as each one opens, before any message of
 * it can be missed.
 */
async function openMany(
  url: (i: number) => string,
  count: number,
  concurrency: number,
  timeoutMs = 10_000,
  setup?: (ws: WebSocket) => void,
): Promise<{ sockets: WebSocket[]; failed: number }> {
  const sockets: WebSocket[] = [];
  let failed = 0;
  let next = 0;
  const deadline = Date.now() + timeoutMs;
  async function worker() {
    while (next < count && Date.now() < deadline) {
      const i = next++;
      const ws = new WebSocket(url(i));
      ws.binaryType = "arraybuffer";
      const ok = await new Promise<boolean>((resolve) => {
        ws.onopen = () => resolve(true);
        ws.onerror = () => resolve(false);
        ws.onclose = () => resolve(false);
      });
      ws.onopen = ws.onerror = ws.onclose = null;
      if (ok) setup?.(ws);
      if (ok) sockets[i] = ws;
      else failed++;
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return { sockets: sockets.filter(Boolean), failed };
}

/** Closes every socket (1000) and waits for the closes, at most `timeoutMs`. */
async function closeAll(sockets: WebSocket[], timeoutMs = 5000): Promise<number> {
  const closes = sockets.map((ws) =>
    ws.readyState === WebSocket.CLOSED ? Promise.resolve() : new Promise<void>((resolve) => {
      ws.onmessage = null;
      ws.onerror = () => {};
      ws.onclose = () => resolve();
      try {
        ws.close(1000);
      } catch {
        resolve();
      }
    })
  );
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<"timeout">((resolve) =>
    timer = setTimeout(() => resolve("timeout"), timeoutMs)
  );
  const result = await Promise.race([Promise.all(closes), expired]);
  clearTimeout(timer);
  return result === "timeout" ? sockets.filter((ws) => ws.readyState !== WebSocket.CLOSED).length : 0;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/** Round trips in 10 µs buckets (bucket → count), so that several load generators can be merged. */
function histogram(rtts: number[]): Record<number, number> {
  const buckets: Record<number, number> = {};
  for (const rtt of rtts) {
    const bucket = Math.floor(rtt * 100);
    buckets[bucket] = (buckets[bucket] ?? 0) + 1;
  }
  return buckets;
}

interface EchoCommand {
  url: string;
  pid: number;
  conns: number;
  inflight: number;
  kind: "text" | "binary";
  size: number;
  warmupMs: number;
  windowMs: number;
}

async function echo(command: EchoCommand) {
  const { conns, inflight, kind, size, pid } = command;
  const payload = kind === "text" ? "x".repeat(size) : new Uint8Array(size).fill(7);
  const { sockets, failed } = await openMany((i) => `${command.url}?user=u${i}`, conns, 50);
  let received = 0;
  let wrongSize = 0;
  let stopping = false;
  let inFlight = 0;
  const unexpectedCloses: Record<string, number> = {};
  const latency = inflight === 1;
  let recording = false;
  const rtts: number[] = [];
  let drained: (() => void) | undefined;
  for (const ws of sockets) {
    let sentAt = 0;
    ws.onmessage = (event) => {
      const data = event.data;
      if ((typeof data === "string" ? data.length : (data as ArrayBuffer).byteLength) !== size) wrongSize++;
      received++;
      if (latency && recording) rtts.push(performance.now() - sentAt);
      if (stopping) {
        if (--inFlight === 0) drained?.();
        return;
      }
      if (latency) sentAt = performance.now();
      ws.send(payload);
    };
    ws.onclose = (event) => {
      if (stopping) return;
      const key = `${event.code} ${event.reason}`.trim();
      unexpectedCloses[key] = (unexpectedCloses[key] ?? 0) + 1;
    };
    ws.onerror = () => {};
    sentAt = performance.now();
    for (let i = 0; i < inflight; i++) ws.send(payload);
    inFlight += inflight;
  }
  await sleep(command.warmupMs);
  const before = received;
  recording = true;
  const window = startWindow(pid);
  await sleep(command.windowMs);
  const w = window.end();
  const messages = received - before;
  recording = false;
  stopping = true;
  // Let the messages in flight come back before closing (a close meanwhile would be a peer error).
  inFlight -= Object.values(unexpectedCloses).reduce((a, b) => a + b, 0) * inflight;
  if (inFlight > 0) {
    await Promise.race([new Promise<void>((resolve) => drained = resolve), sleep(3000)]);
  }
  const notClosed = await closeAll(sockets);
  rtts.sort((a, b) => a - b);
  return {
    connections: sockets.length,
    failedConnections: failed,
    messages,
    rate: messages / w.seconds,
    ...cpuReport(w, messages),
    ...(latency
      ? {
        p50Ms: percentile(rtts, 0.5),
        p99Ms: percentile(rtts, 0.99),
        samples: rtts.length,
        histogram: histogram(rtts),
      }
      : {}),
    wrongSize,
    unexpectedCloses,
    notClosed,
  };
}

interface BroadcastCommand {
  url: string;
  pid: number;
  clients: number;
  publishes: number;
  size: number;
  stallMs: number;
}

async function broadcast(command: BroadcastCommand) {
  const { clients, publishes, size, pid } = command;
  let ready = 0;
  let received = 0;
  let lastAt = 0;
  let report: Record<string, number> | undefined;
  let expected = Infinity;
  let onDone: (() => void) | undefined;
  let onReport: (() => void) | undefined;
  const unexpectedCloses: Record<string, number> = {};
  let closing = false;
  const setup = (ws: WebSocket) => {
    ws.onmessage = (event) => {
      const data = event.data;
      if (typeof data === "string" && data.length === size) {
        received++;
        lastAt = performance.now();
        if (received === expected) onDone?.();
      } else if (data === "ready") {
        ready++;
      } else if (typeof data === "string" && data.startsWith("{")) {
        report = JSON.parse(data);
        onReport?.();
      }
    };
    ws.onclose = (event) => {
      if (closing) return;
      const key = `${event.code} ${event.reason}`.trim();
      unexpectedCloses[key] = (unexpectedCloses[key] ?? 0) + 1;
    };
    ws.onerror = () => {};
  };
  const { sockets, failed } = await openMany((i) => `${command.url}?user=u${i}`, clients, 100, 10_000, setup);
  expected = sockets.length * publishes;
  const readyBy = Date.now() + 10_000;
  while (ready < sockets.length && Date.now() < readyBy) await sleep(5);
  const subscribed = ready;
  const window = startWindow(pid);
  const t0 = performance.now();
  sockets[0].send(`publish ${publishes} ${size}`);
  // Done when every client has every message, or when deliveries stall.
  const done = new Promise<void>((resolve) => onDone = resolve);
  while (received < expected) {
    const seen = received;
    await Promise.race([done, sleep(command.stallMs)]);
    if (received === seen) break;
  }
  const w = window.end();
  if (!report) await Promise.race([new Promise<void>((resolve) => onReport = resolve), sleep(1000)]);
  // The window ends at the last delivery, not when the stall was noticed.
  const seconds = ((lastAt || performance.now()) - t0) / 1000;
  closing = true;
  const notClosed = await closeAll(sockets);
  return {
    connections: sockets.length,
    failedConnections: failed,
    subscribed,
    expected,
    delivered: received,
    rate: received / seconds,
    ...cpuReport({ ...w, seconds }, received),
    serverReport: report,
    unexpectedCloses,
    notClosed,
  };
}

interface ChurnCommand {
  url: string;
  pid: number;
  concurrency: number;
  warmupMs: number;
  windowMs: number;
}

async function churn(command: ChurnCommand) {
  let opened = 0;
  let failed = 0;
  let running = true;
  const errors: Record<string, number> = {};
  async function loop(k: number) {
    let n = 0;
    while (running) {
      const ws = new WebSocket(`${command.url}?user=u${k}-${n++}`);
      const ok = await new Promise<boolean>((resolve) => {
        let open = false;
        ws.onopen = () => {
          open = true;
          opened++;
          ws.close(1000);
        };
        ws.onerror = () => {};
        ws.onclose = (event) => {
          if (!open) {
            const key = `${event.code} ${event.reason}`.trim();
            errors[key] = (errors[key] ?? 0) + 1;
          }
          resolve(open);
        };
      });
      if (!ok) {
        failed++;
        await sleep(10);
      }
    }
  }
  const loops = Array.from({ length: command.concurrency }, (_, k) => loop(k));
  await sleep(command.warmupMs);
  const before = opened;
  const window = startWindow(command.pid);
  await sleep(command.windowMs);
  const w = window.end();
  const upgrades = opened - before;
  running = false;
  await Promise.race([Promise.all(loops), sleep(5000)]);
  return { upgrades, rate: upgrades / w.seconds, ...cpuReport(w, upgrades), failed, errors };
}

let idle: WebSocket[] = [];

async function openIdle(command: { url: string; count: number; concurrency: number }) {
  const { sockets, failed } = await openMany(
    (i) => `${command.url}?user=u${i}`,
    command.count,
    command.concurrency,
    60_000,
  );
  idle.push(...sockets);
  return { opened: sockets.length, failed };
}

async function closeIdle() {
  const notClosed = await closeAll(idle, 10_000);
  const closed = idle.length;
  idle = [];
  return { closed, notClosed };
}

// deno-lint-ignore no-explicit-any
const commands: Record<string, (command: any) => Promise<unknown>> = {
  echo,
  broadcast,
  churn,
  open: openIdle,
  close: closeIdle,
};

const encoder = new TextEncoder();
let buffer = "";
const decoder = new TextDecoder();
for await (const chunk of Deno.stdin.readable) {
  buffer += decoder.decode(chunk, { stream: true });
  let newline;
  while ((newline = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    if (!line.trim()) continue;
    const command = JSON.parse(line);
    let answer;
    try {
      const run = commands[command.cmd];
      if (!run) throw new Error(`unknown command ${command.cmd}`);
      answer = { ok: true, ...(await run(command) as object) };
    } catch (error) {
      answer = { ok: false, error: String(error) };
    }
    await Deno.stdout.write(encoder.encode(JSON.stringify(answer) + "\n"));
  }
}
