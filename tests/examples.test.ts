// The examples' contracts, checked by running them as their users would,
// under the runtime that runs this test.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { TestClient, within } from "./helpers.ts";
import { freePort } from "./redis_server.ts";
import { runtime } from "./runtime.ts";

interface Running {
  child: ChildProcess;
  port: number;
  /** Resolves with the exit code once the process has exited. */
  exited: Promise<number | null>;
  output: () => string;
}

/**
 * Waits for the example to exit and checks that it exited with status 0 after
 * printing `finalLine`. (A Deno parent's node:child_process reports any child
 * it sent a signal to as killed by that signal, even when the child handled it
 * and exited 0; the final line shows the handler ran to the end.)
 */
async function exitedCleanly(example: Running, finalLine: string): Promise<void> {
  const code = await within(example.exited, 10_000, "exit");
  assert.ok(example.output().includes(finalLine), `no "${finalLine}" in:\n${example.output()}`);
  if (!("Deno" in globalThis) || code !== null) assert.equal(code, 0);
}

async function runExample(path: string, marker: string): Promise<Running> {
  const port = await freePort();
  const file = new URL(`../examples/${path}`, import.meta.url).pathname;
  const args = runtime === "bun"
    ? ["run", file]
    : runtime === "node"
    ? [file]
    : ["run", "--allow-net", "--allow-env", file];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  let output = "";
  await within(
    new Promise<void>((resolve) =>
      child.stdout!.on("data", (chunk) => {
        output += chunk;
        if (output.includes(marker)) resolve();
      })
    ),
    15_000,
    `${path} to listen`,
  );
  return { child, port, exited, output: () => output };
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(
    `examples/echo.ts echoes text and binary, answers 426, and on ${signal} closes clients with 1001 and exits 0`,
    {
      timeout: 30_000,
    },
    async () => {
      const echo = await runExample("echo.ts", "listening");
      try {
        const client = await TestClient.open(`ws://127.0.0.1:${echo.port}/`);
        client.send("text");
        assert.equal(await client.next(), "text");
        client.send(new Uint8Array([1, 2, 3]));
        assert.deepEqual(await client.next(), new Uint8Array([1, 2, 3]));
        const plain = await fetch(`http://127.0.0.1:${echo.port}/`);
        assert.equal(plain.status, 426);
        await plain.body?.cancel();
        echo.child.kill(signal);
        // wsport's close (the runtimes' own say "Server closed" or "Server shutting down").
        assert.deepEqual(await client.closedWithin(10_000), { code: 1001, reason: "going away" });
        await exitedCleanly(echo, "echo server stopped");
      } finally {
        echo.child.kill("SIGKILL");
      }
    },
  );
}

test(
  "examples/health_check.ts answers GET /healthz with 200 OK and echoes elsewhere",
  { timeout: 30_000 },
  async () => {
    const example = await runExample("health_check.ts", "listening");
    try {
      const health = await fetch(`http://127.0.0.1:${example.port}/healthz`);
      assert.equal(health.status, 200);
      assert.equal((await health.text()).trim(), "OK");
      const client = await TestClient.open(`ws://127.0.0.1:${example.port}/anything`);
      client.send("echo me");
      assert.equal(await client.next(), "echo me");
      example.child.kill("SIGTERM");
      assert.deepEqual(await client.closedWithin(10_000), { code: 1001, reason: "going away" });
      await exitedCleanly(example, "health check server stopped");
    } finally {
      example.child.kill("SIGKILL");
    }
  },
);

test(
  "examples/shutdown.ts with CLOSE_CODE=1012 tells clients to reconnect and exits 0",
  { timeout: 30_000 },
  async () => {
    process.env.CLOSE_CODE = "1012";
    let example: Running;
    try {
      example = await runExample("shutdown.ts", "listening");
    } finally {
      delete process.env.CLOSE_CODE;
    }
    try {
      const client = await TestClient.open(`ws://127.0.0.1:${example.port}/`);
      example.child.kill("SIGTERM");
      assert.deepEqual(await client.closedWithin(10_000), { code: 1012, reason: "" });
      await exitedCleanly(example, "stopped");
    } finally {
      example.child.kill("SIGKILL");
    }
  },
);

test(
  "examples/hono.ts serves its page, echoes on /ws, refuses /private/ws without the token (401), and exits 0",
  { timeout: 30_000, skip: runtime === "node" && "the Hono middleware embeds in Deno.serve and Bun.serve" },
  async () => {
    const example = await runExample("hono.ts", "listening");
    try {
      const base = `127.0.0.1:${example.port}`;
      const page = await fetch(`http://${base}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /wsport \+ Hono/);
      const client = await TestClient.open(`ws://${base}/ws`);
      client.send("over hono");
      assert.equal(await client.next(), "over hono");
      const refused = await fetch(`http://${base}/private/ws`);
      assert.equal(refused.status, 401);
      assert.equal(refused.headers.get("www-authenticate"), 'Bearer realm="wsport"');
      await refused.body?.cancel();
      const holder = await TestClient.open(`ws://${base}/private/ws?token=secret`);
      assert.equal(await holder.next(), "hello, token holder");
      holder.send("private echo");
      assert.equal(await holder.next(), "private echo");
      example.child.kill("SIGTERM");
      assert.equal((await client.closedWithin(10_000)).code, 1001);
      assert.equal((await holder.closedWithin(10_000)).code, 1001);
      await exitedCleanly(example, "stopped");
    } finally {
      example.child.kill("SIGKILL");
    }
  },
);
