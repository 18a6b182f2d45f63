/**
 * The load generators: `bench/load.ts` under Deno, long-lived processes
 * pinned to the client cores, driven by one JSON command per line; a command
 * can be split between them and their answers merged.
 *
 * @module
 */
import type { Machine } from "./machine.ts";
import { binaries, exitWithin, kill, Lines, spawn, tail } from "./processes.ts";

/** A load generator's JSON answer: which fields it has depends on the command (see bench/load.ts). */
// deno-lint-ignore no-explicit-any
export type Answer = any;

/** One load generator: one JSON command per line in, one JSON answer per line out. */
class LoadGenerator {
  #child!: Deno.ChildProcess;
  #lines!: Lines;
  #writer!: WritableStreamDefaultWriter<Uint8Array>;
  stderr!: () => string;
  pid!: number;

  #core: number | undefined;
  #clkTck: number;

  constructor(core: number | undefined, clkTck: number) {
    this.#core = core;
    this.#clkTck = clkTck;
    this.#start();
  }

  #start() {
    this.#child = spawn(binaries.deno, ["run", "-A", "--no-lock", "bench/load.ts"], {
      core: this.#core,
      env: { CLK_TCK: String(this.#clkTck) },
    });
    this.pid = this.#child.pid;
    this.#lines = new Lines(this.#child.stdout);
    this.#writer = this.#child.stdin.getWriter();
    this.stderr = tail(this.#child.stderr);
  }

  async run(command: Record<string, unknown>, timeoutMs = 120_000): Promise<Answer> {
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
    await exitWithin(this.#child, 2000);
  }
}

/** Merges the answers of several load generators that shared one command. */
function merge(answers: Answer[]): Answer {
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
export class Load {
  readonly generators: LoadGenerator[];
  constructor(machine: Machine) {
    this.generators = Array.from(
      { length: machine.loadProcs },
      (_, i) => new LoadGenerator(machine.pinned?.loadGenerators[i], machine.clkTck),
    );
  }
  get pid(): number {
    return this.generators[0].pid;
  }
  /** Runs on the first generator only (broadcast needs every client in one process). */
  run(command: Record<string, unknown>, timeoutMs?: number): Promise<Answer> {
    return this.generators[0].run(command, timeoutMs);
  }
  /** Splits `command[field]` between the generators and merges the answers. */
  async split(command: Record<string, unknown>, field: string, timeoutMs?: number): Promise<Answer> {
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
  async all(command: Record<string, unknown>, timeoutMs?: number): Promise<Answer> {
    return merge(await Promise.all(this.generators.map((generator) => generator.run(command, timeoutMs))));
  }
  async stop() {
    await Promise.all(this.generators.map((generator) => generator.stop()));
  }
}
