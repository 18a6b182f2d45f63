// End-to-end test of examples/chat in a real browser, once per runtime.
// Run by `npm test` (under deno test and bun test), or alone with: node --test tests/browser/
//
// Starts the chat example under Deno and under Bun, opens three Chromium
// pages (two in room "blue", one in room "green") and checks that a message
// typed in one blue page reaches both blue pages and not the green one. Then
// the room's history (issue 18): a page that reloads, or whose server process
// is stopped and restarted, shows every message once, in order; with Redis,
// across two server processes.
// Needs Debian's chromium at /usr/bin/chromium; fails (does not skip) without it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { RedisServer } from "../redis_server.ts";
import { redisBackend } from "../../redis.ts";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = "/tmp/wsport-chat.png";
const TEST_TIMEOUT_MS = 60_000;
const LISTEN_TIMEOUT_MS = 15_000;
const UI_TIMEOUT_MS = 10_000;
const KILL_GRACE_MS = 5_000;

const RUNTIMES = {
  deno: [join(root, "node_modules", ".bin", "deno"), [
    "run",
    "--allow-net",
    "--allow-env",
    "examples/chat/server.ts",
  ]],
  bun: [join(root, "node_modules", ".bin", "bun"), ["run", "examples/chat/server.ts"]],
  // Node 24 runs the TypeScript example as it is (type stripping); Node 20 cannot.
  node: [process.execPath, ["examples/chat/server.ts"]],
};

/** Asks the OS for a free TCP port on 127.0.0.1. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close((error) => (error ? reject(error) : resolve(port)));
    });
  });
}

/** Starts the chat example; resolves with the child and its URL once it prints "chat on". */
function startChat(runtime, port, redisUrl = "") {
  const [command, args] = RUNTIMES[runtime];
  assert.ok(existsSync(command), `${command} is missing; run npm ci`);
  const child = spawn(command, args, {
    cwd: root,
    env: { ...process.env, HOST: "127.0.0.1", PORT: String(port), REDIS_URL: redisUrl, NO_COLOR: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk) => (output += chunk));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(new Error(`${runtime}: no "chat on" line within ${LISTEN_TIMEOUT_MS} ms; output:\n${output}`)),
      LISTEN_TIMEOUT_MS,
    );
    child.stdout.on("data", (chunk) => {
      output += chunk;
      const match = /chat on (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${runtime}: chat exited early (code ${code}, signal ${signal}); output:\n${output}`));
    });
  });
  return { child, ready, output: () => output };
}

/** SIGTERM, wait for exit; SIGKILL if it is still running after KILL_GRACE_MS. Resolves with the exit info. */
function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode, killed: false });
  }
  return new Promise((resolve) => {
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill("SIGKILL");
    }, KILL_GRACE_MS);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, killed });
    });
    child.kill("SIGTERM");
  });
}

async function openRoom(browser, url, room) {
  const page = await browser.newPage();
  await page.goto(`${url}?room=${room}`, { timeout: UI_TIMEOUT_MS });
  return page;
}

async function waitConnected(page, label) {
  try {
    await page.waitForFunction(() => document.getElementById("status")?.textContent === "connected", null, {
      timeout: UI_TIMEOUT_MS,
    });
  } catch (error) {
    const status = await page.textContent("#status").catch(() => "?");
    throw new Error(`${label}: #status is "${status}", not "connected": ${error.message}`);
  }
}

async function messages(page) {
  return await page.$$eval("#messages li", (items) => items.map((item) => item.textContent));
}

function launchBrowser() {
  assert.ok(
    existsSync(CHROMIUM),
    `${CHROMIUM} is missing: install the Debian package "chromium" (apt-get install chromium)`,
  );
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
      "--disable-sync",
      "--disable-quic",
    ],
  });
}

async function chatInBrowser(runtime) {
  const port = await freePort();
  const server = startChat(runtime, port);
  let exit;
  try {
    const url = await server.ready;
    assert.equal(url, `http://127.0.0.1:${port}/`);
    const browser = await launchBrowser();
    try {
      const blue1 = await openRoom(browser, url, "blue");
      const blue2 = await openRoom(browser, url, "blue");
      const green = await openRoom(browser, url, "green");
      await Promise.all([
        waitConnected(blue1, "blue page one"),
        waitConnected(blue2, "blue page two"),
        waitConnected(green, "green page"),
      ]);

      const text = `hello from ${runtime} ${Date.now()}`;
      await blue1.fill("#text", text);
      await blue1.press("#text", "Enter");

      for (const [page, label] of [[blue2, "blue page two"], [blue1, "blue page one (sender)"]]) {
        await page
          .locator("#messages li", { hasText: text })
          .waitFor({ timeout: UI_TIMEOUT_MS })
          .catch((error) => {
            throw new Error(`${label} did not show the message: ${error.message}`);
          });
        assert.deepEqual(await messages(page), [text], `${label} should hold exactly the one message`);
      }
      assert.equal(await blue1.inputValue("#text"), "", "the input is cleared after sending");
      await blue2.screenshot({ path: SCREENSHOT, fullPage: true });

      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.deepEqual(await messages(green), [], "the green room must not receive blue's message");
      assert.deepEqual(await messages(blue2), [text], "blue page two got the message exactly once");
    } finally {
      await browser.close();
    }
  } finally {
    exit = await stop(server.child);
  }
  // Checked after the finally so that it never hides an earlier failure.
  assert.equal(
    exit.killed,
    false,
    `${runtime}: chat ignored SIGTERM for ${KILL_GRACE_MS} ms; output:\n${server.output()}`,
  );
}

/** Types `text` in a page and waits until it shows there (its own message came back). */
async function say(page, text) {
  await page.fill("#text", text);
  await page.press("#text", "Enter");
  await waitShown(page, [text], `the sender's own "${text}"`);
}

/** Waits until the page's messages end with `texts`. */
async function waitShown(page, texts, what) {
  try {
    await page.waitForFunction(
      (expected) => {
        const shown = [...document.querySelectorAll("#messages li")].map((item) => item.textContent);
        return JSON.stringify(shown.slice(-expected.length)) === JSON.stringify(expected);
      },
      texts,
      { timeout: UI_TIMEOUT_MS },
    );
  } catch (error) {
    throw new Error(`${what}: the page shows ${JSON.stringify(await messages(page))}: ${error.message}`);
  }
}

/** Stops the chat process and asserts it went on SIGTERM. */
async function stopChat(chat, runtime) {
  const exit = await stop(chat.child);
  assert.equal(exit.killed, false, `${runtime}: chat ignored SIGTERM; output:\n${chat.output()}`);
}

/**
 * One process with in-memory history: a page that reloads shows what it had and what was said
 * meanwhile, once, in order; after its server restarts (the history is lost with the process) it
 * says so and goes on live.
 */
async function resumeInBrowser(runtime) {
  const port = await freePort();
  const chats = [startChat(runtime, port)];
  const browser = await launchBrowser();
  try {
    const url = await chats[0].ready;
    const one = await openRoom(browser, url, "resume");
    const two = await openRoom(browser, url, "resume");
    await Promise.all([waitConnected(one, "page one"), waitConnected(two, "page two")]);
    await say(one, "one: hello");
    await waitShown(two, ["one: hello"], "page two");

    // Page one reloads while page two goes on talking.
    const reloading = one.reload();
    for (let i = 1; i <= 5; i++) await say(two, `two: ${i}`);
    await reloading;
    await waitConnected(one, "page one after its reload");
    const expected = ["one: hello", ...[1, 2, 3, 4, 5].map((i) => `two: ${i}`)];
    await waitShown(one, expected, "page one after its reload");
    assert.deepEqual(await messages(one), expected, "every message once, in order, after the reload");
    assert.match(await one.textContent("#members"), /guest-\w+, guest-\w+/);

    // The process restarts: the in-memory history is gone, and the page is told so.
    await stopChat(chats[0], runtime);
    chats.push(startChat(runtime, port));
    await chats[1].ready;
    await Promise.all([waitConnected(one, "page one after the restart"), waitConnected(two, "page two")]);
    await one.locator("#notice", { hasText: "(epoch)" }).waitFor({ timeout: UI_TIMEOUT_MS });
    await say(two, "two: after the restart");
    await waitShown(one, [...expected, "two: after the restart"], "page one, live after the restart");
    assert.deepEqual(await messages(one), [...expected, "two: after the restart"]);
  } finally {
    await browser.close();
    for (const chat of chats) await stopChat(chat, runtime);
  }
}

/** Whether the Redis backend keeps history (it does once the Redis side of issue 18 is merged). */
async function redisKeepsHistory() {
  const probe = redisBackend("redis://127.0.0.1:1", { onStatus() {}, connectTimeout: 1 });
  const keeps = probe.history !== undefined && probe.presence !== undefined;
  await probe.close();
  return keeps;
}

/**
 * Two processes sharing Redis: page one's process is stopped while page two (on the other process)
 * goes on talking, then restarted: page one shows every message once, in order.
 */
async function resumeAcrossProcesses(runtime) {
  const redis = await RedisServer.start();
  const [port1, port2] = [await freePort(), await freePort()];
  const chats = [startChat(runtime, port1, redis.url), startChat(runtime, port2, redis.url)];
  const browser = await launchBrowser();
  try {
    const [url1, url2] = [await chats[0].ready, await chats[1].ready];
    const one = await openRoom(browser, url1, "shared");
    const two = await openRoom(browser, url2, "shared");
    await Promise.all([waitConnected(one, "page one"), waitConnected(two, "page two")]);
    await say(one, "one: hello");
    await waitShown(two, ["one: hello"], "page two (through Redis)");
    await two.locator("#members", { hasText: "," }).waitFor({ timeout: UI_TIMEOUT_MS });

    await stopChat(chats[0], runtime);
    await one.locator("#status", { hasText: "disconnected" }).waitFor({ timeout: UI_TIMEOUT_MS });
    for (let i = 1; i <= 5; i++) await say(two, `two: ${i}`);
    chats[0] = startChat(runtime, port1, redis.url);
    await chats[0].ready;
    await waitConnected(one, "page one after its server restarted");
    const expected = ["one: hello", ...[1, 2, 3, 4, 5].map((i) => `two: ${i}`)];
    await waitShown(one, expected, "page one after its server restarted");
    await say(two, "two: live again");
    await waitShown(one, [...expected, "two: live again"], "page one, live");
    assert.deepEqual(await messages(one), [...expected, "two: live again"], "every message once, in order");
    assert.equal(await one.textContent("#notice"), "", "nothing was lost");
  } finally {
    await browser.close();
    for (const chat of chats) await stopChat(chat, runtime);
    await redis.stop();
  }
}

const redisHistory = await redisKeepsHistory();

// Under `deno test` the chat runs on Deno, under `bun test` on Bun, under Node 24 on Node (the others
// are declared skipped, so that every runtime reports the same tests).
const current = "Bun" in globalThis ? "bun" : "Deno" in globalThis ? "deno" : "node";
for (const runtime of Object.keys(RUNTIMES)) {
  const skip = runtime !== current && `the ${runtime} chat runs under ${runtime}`;
  test(
    `chat example in chromium (${runtime})`,
    { timeout: TEST_TIMEOUT_MS, skip },
    () => chatInBrowser(runtime),
  );
  test(
    `chat page resumes after a reload and after its server restarts (${runtime})`,
    { timeout: TEST_TIMEOUT_MS, skip },
    () => resumeInBrowser(runtime),
  );
  test(
    `chat page resumes across two server processes sharing Redis (${runtime})`,
    { timeout: TEST_TIMEOUT_MS, skip: skip || (!redisHistory && "redisBackend has no history yet") },
    () => resumeAcrossProcesses(runtime),
  );
}
