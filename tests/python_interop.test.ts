// Interop with a client the project did not write: Python's websockets
// (Debian's python3-websockets, run by Debian's /usr/bin/python3).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import type { Connection } from "../mod.ts";
import { startServer, within } from "./helpers.ts";

const PYTHON = "/usr/bin/python3";

test("a Python websockets client is echoed text as text and binary as binary, and closes with 1000", {
  timeout: 30_000,
}, async () => {
  const closed = Promise.withResolvers<unknown>();
  await using server = startServer(async (ws: Connection) => {
    for await (const message of ws) await ws.send(message);
    closed.resolve(await ws.closed);
  });
  const script = new URL("./fixtures/py_client.py", import.meta.url).pathname;
  const child = spawn(PYTHON, [script, `${server.url}/`], { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let errors = "";
  child.stdout.on("data", (chunk) => output += chunk);
  child.stderr.on("data", (chunk) => errors += chunk);
  const code = await within(new Promise((resolve) => child.once("exit", resolve)), 20_000, "python client");
  assert.equal(code, 0, `python failed (is python3-websockets installed?):\n${errors}`);
  const result = JSON.parse(output.trim());
  assert.equal(result.text, "héllo from python");
  assert.equal(result.text_type, "str");
  assert.deepEqual(result.binary, [0, 1, 254, 255]);
  assert.equal(result.binary_type, "bytes");
  assert.equal(result.close_code, 1000);
  assert.deepEqual(await within(closed.promise, 5000, "the handler's closed"), { code: 1000, reason: "bye" });
});
