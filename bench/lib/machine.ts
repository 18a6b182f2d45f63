/**
 * What the bench runs on: cores, CPU model, clock ticks (the unit of CPU
 * times in /proc), runtime versions, load average, and which core the servers
 * and the load generators are pinned to.
 *
 * @module
 */
import { binaries, capture, type Runtime } from "./processes.ts";

export interface Machine {
  cores: number;
  model: string;
  clkTck: number;
  versions: Record<Runtime, string>;
  /** The load average before the run. */
  loadBefore: string;
  /** How many load generators run. */
  loadProcs: number;
  /** The servers' core and the load generators' cores; null where processes are not pinned. */
  pinned: { server: number; loadGenerators: number[] } | null;
}

export const loadavg = () => Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");

/** Reads the machine; `loadProcs` is the `--load-procs` flag, if given. */
export async function probeMachine(loadProcs: string | undefined): Promise<Machine> {
  const cpuinfo = Deno.readTextFileSync("/proc/cpuinfo");
  const cores = (cpuinfo.match(/^processor\s*:/gm) ?? []).length || navigator.hardwareConcurrency;
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown";
  const clkTck = Number((await capture("getconf", ["CLK_TCK"])).out) || 100;
  const versions: Record<Runtime, string> = {
    deno: (await capture(binaries.deno, ["--version"])).out.split("\n")[0].replace(/^deno /, ""),
    bun: (await capture(binaries.bun, ["--version"])).out,
    node: (await capture(binaries.node, ["--version"])).out.replace(/^v/, ""),
  };
  const loadBefore = loadavg();
  // Pin servers to one core, the load generators (and this driver) to others: one load generator
  // on 2-3 cores, up to 3 on bigger machines (`--load-procs N`), each on its own core.
  const pinning = cores >= 2 && (await capture("taskset", ["-c", "0", "true"])).ok;
  const procs = Math.max(1, Number(loadProcs ?? (cores >= 4 ? Math.min(3, cores - 2) : 1)));
  const clientCores = Array.from({ length: procs }, (_, i) => i % Math.max(1, cores - 1));
  return {
    cores,
    model,
    clkTck,
    versions,
    loadBefore,
    loadProcs: procs,
    pinned: pinning ? { server: cores - 1, loadGenerators: clientCores } : null,
  };
}

/** Pins a running process (this driver) to one core. */
export async function pinProcess(pid: number, core: number): Promise<void> {
  await capture("taskset", ["-pc", String(core), String(pid)]);
}
