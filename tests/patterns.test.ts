/**
 * The documented handler patterns, run as written. The recipe below is the
 * "Consumer and producer" block of docs/connection.md less its import line:
 * scripts/check_docs.mjs (`excerpt=`) fails if the two differ.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { type Connection, ConnectionClosed } from "../mod.ts";
import { startServer, TestClient, waitFor, within } from "./helpers.ts";
import { runArgs } from "./runtime.ts";

/** Resolves after `ms`; rejects with the signal's reason as soon as it aborts. */
function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    signal.throwIfAborted();
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

async function consumerProducer(ws: Connection): Promise<void> {
  // Aborted when the connection closes, or when one of the two tasks ends: that stops the other.
  const finished = new AbortController();
  const signal = AbortSignal.any([ws.signal, finished.signal]);

  async function consume(): Promise<void> {
    while (true) {
      const message = await ws.recv({ signal }); // rejects once the connection closes or `signal` aborts
      await ws.send(`echo: ${message}`);
    }
  }
  async function produce(): Promise<void> {
    for (let tick = 1;; tick++) {
      await ws.send(`tick ${tick}`);
      await sleep(1000, signal);
    }
  }

  const tasks = [consume(), produce()];
  try {
    await Promise.race(tasks); // the first task to end; if it failed, its error ends the handler
  } finally {
    finished.abort(); // cancels the other one: its recv() or sleep() rejects at once
    await Promise.allSettled(tasks); // and waits for it, so that no rejection is left unhandled
  }
}

/** Serves the recipe; `runs` are the handler's promises, as the server got them. */
function serveRecipe() {
  const runs: Promise<void>[] = [];
  const reported: unknown[] = [];
  const server = startServer((ws) => {
    const run = consumerProducer(ws);
    runs.push(run);
    return run;
  }, { onError: (error) => void reported.push(error) });
  return { server, runs, reported };
}

/** Reads messages until `wanted` arrives (ticks may come in between). */
async function readUntil(client: TestClient, wanted: string): Promise<void> {
  while (await client.next() !== wanted);
}

// deno test and bun test fail a test during which a rejection goes unhandled: these would fail if the
// recipe left one (the last test shows the pattern that does, in a process of its own).

test("consumer and producer: the client closes, both tasks end, the handler ends at once, nothing unhandled", async () => {
  const { server, runs, reported } = serveRecipe();
  await using _ = server;
  const client = await TestClient.open(server.url);
  assert.equal(await client.next(), "tick 1", "the producer runs");
  client.send("hi");
  await readUntil(client, "echo: hi"); // and the consumer
  client.close(1000);
  // The producer sleeps 1 s between ticks: a handler that ended within 700 ms of the close did not wait it out.
  const [outcome] = await within(Promise.allSettled(runs), 700, "the handler's end");
  // The consumer's recv() rejected with the close; the server takes that as the peer's doing.
  assert.equal(outcome.status, "rejected");
  assert.ok((outcome as PromiseRejectedResult).reason instanceof ConnectionClosed);
  await waitFor(() => server.runningHandlers === 0, 2000, "no running handler");
  assert.deepEqual(reported, [], "nothing reported to onError");
  assert.equal(server.counters.closed.handlerError, 0);
});

test("consumer and producer: server shutdown ends the handler through ws.signal", async () => {
  const { server, runs, reported } = serveRecipe();
  const client = await TestClient.open(server.url);
  assert.equal(await client.next(), "tick 1");
  // close() waits for the handler: within 700 ms, it did not wait out the producer's 1 s sleep.
  await within(server.close(), 700, "close()");
  assert.equal((await client.closed).code, 1001);
  await within(Promise.allSettled(runs), 100, "the handler's end");
  assert.equal(server.runningHandlers, 0);
  assert.deepEqual(reported, []);
});

test(
  "what the recipe avoids: a detached task that sends after the close ends the process (unhandled rejection)",
  { timeout: 30_000 },
  async () => {
    const fixture = new URL("./fixtures/detached_send.ts", import.meta.url).pathname;
    const args = runArgs(fixture);
    const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (chunk) => stdout += chunk);
    child.stderr.on("data", (chunk) => stderr += chunk);
    const code = await within(
      new Promise<number | null>((resolve) => child.once("exit", resolve)),
      20_000,
      "the process to end",
    ).catch((error) => {
      child.kill("SIGKILL");
      throw error;
    });
    assert.notEqual(code, 0);
    assert.equal(stdout, "", "it did not survive");
    assert.match(stderr, /ConnectionClosedOK/);
  },
);
