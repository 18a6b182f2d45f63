// History and presence of the Redis backend, at the store level (the server's use of them is
// tested with the server): real redis-server, backends in this process and in a second process.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { type PresenceEvent, type RedisBackend, redisBackend, type StreamPosition } from "../redis.ts";
import { InvalidOption, type Message } from "../mod.ts";
import { delay, waitFor, within } from "./helpers.ts";
import { RedisServer } from "./redis_server.ts";
import { runArgs } from "./runtime.ts";

const PEER = new URL("./fixtures/redis_peer.ts", import.meta.url).pathname;

/** What a backend delivered: messages with their positions, and presence events. */
interface Seen {
  messages: { topic: string; message: Message; position?: StreamPosition }[];
  presence: { topic: string; event: PresenceEvent }[];
}

/** A started backend that records what it receives; closed by the test's cleanup. */
function backend(url: string, cleanup: (() => Promise<unknown>)[], presenceTtl = 10_000) {
  const store = redisBackend(url, { presenceTtl, onStatus: () => {} });
  const seen: Seen = { messages: [], presence: [] };
  store.start(
    (topic, message, position) => seen.messages.push({ topic, message, position }),
    (topic, event) => seen.presence.push({ topic, event }),
  );
  cleanup.push(() => store.close());
  return Object.assign(store, { seen }) as RedisBackend & { seen: Seen };
}

/** The fixture process: a backend in another process of this runtime, driven by JSON lines. */
class Peer {
  readonly child: ChildProcess;
  #replies: unknown[] = [];
  #waiters: ((reply: unknown) => void)[] = [];

  private constructor(url: string, presenceTtl: number) {
    this.child = spawn(process.execPath, runArgs(PEER), {
      env: { ...process.env, REDIS_URL: url, PRESENCE_TTL: String(presenceTtl) },
      stdio: ["pipe", "pipe", "inherit"],
    });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const reply = JSON.parse(line);
      const waiter = this.#waiters.shift();
      if (waiter) waiter(reply);
      else this.#replies.push(reply);
    });
  }

  static async start(url: string, cleanup: (() => Promise<unknown>)[], presenceTtl = 10_000): Promise<Peer> {
    const peer = new Peer(url, presenceTtl);
    cleanup.push(() => peer.kill());
    assert.deepEqual(await peer.#next(), { op: "ready" });
    return peer;
  }

  #next(): Promise<unknown> {
    if (this.#replies.length > 0) return Promise.resolve(this.#replies.shift());
    return within(new Promise((resolve) => this.#waiters.push(resolve)), 20_000, "the peer's reply");
  }

  // deno-lint-ignore no-explicit-any
  send(command: Record<string, unknown>): Promise<any> {
    this.child.stdin!.write(JSON.stringify(command) + "\n");
    return this.#next();
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.child.kill("SIGKILL");
    await exited;
  }
}

/** Runs `body` with a fresh redis-server, then closes what it registered and stops Redis. */
async function withRedis(
  body: (redis: RedisServer, cleanup: (() => Promise<unknown>)[]) => Promise<void>,
): Promise<void> {
  const redis = await RedisServer.start();
  const cleanup: (() => Promise<unknown>)[] = [];
  try {
    await body(redis, cleanup);
  } finally {
    for (const step of cleanup.reverse()) await step().catch(() => {});
    await redis.stop();
  }
}

const offsets = (positions: readonly { offset: number }[]) => positions.map((p) => p.offset);
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test(
  "Redis history: appends from two backends and another process form one sequence, delivered to all in history order",
  {
    timeout: 60_000,
  },
  async () => {
    await withRedis(async (redis, cleanup) => {
      const rule = { size: 100, ttl: 60_000 };
      const a = backend(redis.url, cleanup);
      const b = backend(redis.url, cleanup);
      await a.subscribe("t");
      await b.subscribe("t");
      const peer = await Peer.start(redis.url, cleanup);

      const positions: StreamPosition[] = [];
      for (let i = 0; i < 5; i++) positions.push(await a.history.append("t", `a ${i}`, rule));
      for (let i = 0; i < 5; i++) positions.push(await b.history.append("t", `b ${i}`, rule));
      const fromPeer = await peer.send({ op: "append", topic: "t", count: 5, text: "p", ...rule });
      positions.push(...fromPeer.positions);
      positions.push(await a.history.append("t", new Uint8Array([0, 255, 58, 10]), rule));
      positions.push(await b.history.append("t", "héllo ✓ :", rule));
      assert.deepEqual(offsets(positions), range(1, 17), "each append takes the next offset");
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1, "one epoch");

      // Live: every append reaches both backends, the appending one too, in offset order.
      await waitFor(() => a.seen.messages.length === 17 && b.seen.messages.length === 17, 5000, "deliveries");
      assert.deepEqual(a.seen.messages, b.seen.messages);
      assert.deepEqual(a.seen.messages.map((m) => m.position), positions);
      const expected = [
        ...range(0, 4).map((i) => `a ${i}`),
        ...range(0, 4).map((i) => `b ${i}`),
        ...range(0, 4).map((i) => `p ${i}`),
        new Uint8Array([0, 255, 58, 10]),
        "héllo ✓ :",
      ];
      assert.deepEqual(a.seen.messages.map((m) => m.message), expected);

      // The history holds the same messages at the same positions.
      const all = await b.history.read("t", {}, rule);
      assert.deepEqual(all, {
        messages: a.seen.messages.map((m) => ({ data: m.message, position: m.position })),
        position: positions[16],
        recovered: true,
      });
      assert.ok(all.messages[15].data instanceof Uint8Array, "binary stays binary");

      // Since: exactly the messages after it, in order; limit: the oldest of them.
      const since = await a.history.read("t", { since: positions[9] }, rule);
      assert.equal(since.recovered, true);
      assert.deepEqual(since.messages.map((m) => m.data), expected.slice(10));
      assert.deepEqual(offsets(since.messages.map((m) => m.position)), range(11, 17));
      const limited = await a.history.read("t", { since: positions[9], limit: 2 }, rule);
      assert.deepEqual(limited.messages.map((m) => m.data), ["p 0", "p 1"]);
      assert.equal(limited.recovered, true);
      assert.deepEqual(limited.position, positions[16]);
      const upToDate = await a.history.read("t", { since: positions[16] }, rule);
      assert.deepEqual(upToDate, { messages: [], position: positions[16], recovered: true });

      // A topic never published has an epoch already, and offset 0: a later append continues it.
      const empty = await a.history.read("quiet", {}, rule);
      assert.deepEqual([empty.messages, empty.position.offset, empty.recovered], [[], 0, true]);
      assert.deepEqual(await b.history.append("quiet", "first", rule), {
        epoch: empty.position.epoch,
        offset: 1,
      });
      const resumed = await a.history.read("quiet", { since: empty.position }, rule);
      assert.deepEqual([resumed.recovered, resumed.messages.map((m) => m.data)], [true, ["first"]]);

      // subscribe() resolves once Redis confirmed it: an append right after it is heard.
      const late = backend(redis.url, cleanup);
      await late.subscribe("late");
      const heard = await a.history.append("late", "right after subscribe", rule);
      await waitFor(() => late.seen.messages.length === 1, 5000, "the append after subscribe()");
      assert.deepEqual(late.seen.messages[0].position, heard);

      // A plain publish (no history) reaches the other backend without a position, not its own.
      await a.publish("t", "plain");
      await a.history.append("t", "marker", rule);
      await waitFor(() => a.seen.messages.at(-1)?.message === "marker", 5000, "the marker on a");
      await waitFor(() => b.seen.messages.at(-1)?.message === "marker", 5000, "the marker on b");
      assert.deepEqual(b.seen.messages.at(-2), { topic: "t", message: "plain", position: undefined });
      assert.equal(a.seen.messages.at(-2)?.message, "héllo ✓ :", "no echo of a's own plain publish");
    });
  },
);

test("Redis history: a position too far behind (size) or expired (ttl) does not recover, and says why", {
  timeout: 30_000,
}, async () => {
  await withRedis(async (redis, cleanup) => {
    const a = backend(redis.url, cleanup);

    const sized = { size: 10, ttl: 60_000 };
    const seen = await a.history.append("sized", "0", sized);
    for (let i = 1; i <= 20; i++) await a.history.append("sized", String(i), sized);
    const behind = await a.history.read("sized", { since: seen }, sized);
    assert.deepEqual([behind.recovered, behind.reason], [false, "too-far-behind"]);
    assert.deepEqual(behind.messages.map((m) => m.data), range(11, 20).map(String), "the last 10 kept");
    const justInTime = await a.history.read("sized", { since: { ...seen, offset: 11 } }, sized);
    assert.deepEqual([justInTime.recovered, justInTime.messages.length], [true, 10]);

    // The whole stream expired (Redis dropped the key); the epoch and top offset remain.
    const short = { size: 100, ttl: 200 };
    const first = await a.history.append("short", "1", short);
    await a.history.append("short", "2", short);
    await delay(300);
    const expired = await a.history.read("short", { since: first }, short);
    assert.deepEqual(expired, {
      messages: [],
      position: { epoch: first.epoch, offset: 2 },
      recovered: false,
      reason: "expired",
    });

    // An older message outlived ttl while Redis still holds it (a newer append kept the key alive).
    const second = { size: 100, ttl: 1000 };
    const old = await a.history.append("mixed", "old", second);
    await delay(600);
    const recent = await a.history.append("mixed", "recent", second);
    await delay(500); // "old" is 1,100 ms old, "recent" 500 ms
    const admin = new Redis(redis.url);
    cleanup.push(() => Promise.resolve(admin.disconnect()));
    assert.equal(await admin.xlen("wsport:history:mixed"), 2, "Redis still holds both");
    const partly = await a.history.read("mixed", { since: { ...old, offset: 0 } }, second);
    assert.deepEqual([partly.recovered, partly.reason], [false, "expired"]);
    assert.deepEqual(partly.messages, [{ data: "recent", position: recent }]);
    assert.deepEqual((await a.history.read("mixed", {}, second)).messages.map((m) => m.position), [recent]);
    const after = await a.history.read("mixed", { since: old }, second);
    assert.deepEqual([after.recovered, after.messages.map((m) => m.data)], [true, ["recent"]]);
  });
});

test(
  "Redis history: a lost history (FLUSHALL, a Redis restart) starts a new epoch",
  { timeout: 60_000 },
  async () => {
    await withRedis(async (redis, cleanup) => {
      const rule = { size: 100, ttl: 60_000 };
      const a = backend(redis.url, cleanup);
      const b = backend(redis.url, cleanup);
      await b.subscribe("t");
      await a.history.append("t", "before", rule);
      const before = await a.history.append("t", "before", rule);

      const admin = new Redis(redis.url);
      cleanup.push(() => Promise.resolve(admin.disconnect()));
      await admin.flushall();
      const flushed = await a.history.read("t", { since: before }, rule);
      assert.deepEqual([flushed.recovered, flushed.reason, flushed.messages], [false, "epoch", []]);
      assert.notEqual(flushed.position.epoch, before.epoch);
      assert.equal(flushed.position.offset, 0);
      const next = await b.history.append("t", "after flush", rule);
      assert.deepEqual(next, { epoch: flushed.position.epoch, offset: 1 }, "the epoch the read created");
      await waitFor(() => b.seen.messages.at(-1)?.message === "after flush", 5000, "delivery after FLUSHALL");
      assert.deepEqual(b.seen.messages.at(-1)?.position, next);

      // The meta hash alone lost (evicted, deleted): a new epoch, and the old stream is not mixed in.
      await b.history.append("t", "after flush 2", rule);
      await admin.del("wsport:history-meta:t");
      const alone = await a.history.append("t", "meta lost", rule);
      assert.equal(alone.offset, 1);
      assert.notEqual(alone.epoch, next.epoch);
      assert.deepEqual((await a.history.read("t", {}, rule)).messages, [{
        data: "meta lost",
        position: alone,
      }]);
      const metaLost = await a.history.read("t", { since: next }, rule);
      assert.deepEqual([metaLost.recovered, metaLost.reason], [false, "epoch"]);

      await redis.stop();
      await redis.restart();
      // The backends reconnect (and b resubscribes) by themselves.
      let restarted: StreamPosition | undefined;
      const deadline = Date.now() + 20_000;
      while (!restarted && Date.now() < deadline) {
        restarted = await a.history.append("t", "after restart", rule).catch(() =>
          delay(100).then(() => undefined)
        );
      }
      assert.ok(restarted, "appends work again after the restart");
      assert.equal(restarted.offset, 1);
      assert.notEqual(restarted.epoch, next.epoch);
      const lost = await b.history.read("t", { since: alone }, rule);
      assert.deepEqual([lost.recovered, lost.reason, lost.position], [false, "epoch", restarted]);
      // Live delivery resumed with the new positions.
      let heard = false;
      for (let i = 0; !heard && i < 100; i++) {
        const position = await a.history.append("t", `probe ${i}`, rule);
        heard = await waitFor(() => b.seen.messages.at(-1)?.message === `probe ${i}`, 200).then(
          () => true,
          () => false,
        );
        if (heard) assert.deepEqual(b.seen.messages.at(-1)?.position, position);
      }
      assert.ok(heard, "b hears appends after the restart");
    });
  },
);

test(
  "Redis history: append is atomic under 5 concurrent appenders (1,000 offsets once each, delivery order = history order)",
  {
    timeout: 60_000,
  },
  async () => {
    await withRedis(async (redis, cleanup) => {
      const rule = { size: 2000, ttl: 60_000 };
      const subscriber = backend(redis.url, cleanup);
      await subscriber.subscribe("busy");
      const appenders = Array.from({ length: 4 }, () => backend(redis.url, cleanup));
      const peer = await Peer.start(redis.url, cleanup);
      // Wait until each appender is connected, so that the appends below really overlap.
      for (const appender of appenders) await appender.history.read("busy", { limit: 0 }, rule);

      const results = await Promise.all([
        ...appenders.map((appender, n) =>
          Promise.all(range(0, 199).map((i) => appender.history.append("busy", `${n} ${i}`, rule)))
        ),
        peer.send({ op: "append", topic: "busy", count: 200, text: "p", together: true, ...rule })
          .then((reply) => reply.positions as StreamPosition[]),
      ]);
      const positions = results.flat();
      assert.deepEqual(offsets(positions).sort((x, y) => x - y), range(1, 1000));
      assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
      // Each appender's own messages took increasing offsets (one connection, in order).
      for (const mine of results) assert.deepEqual(offsets(mine), offsets(mine).toSorted((x, y) => x - y));

      await waitFor(() => subscriber.seen.messages.length === 1000, 10_000, "1000 deliveries");
      const delivered = subscriber.seen.messages;
      assert.deepEqual(offsets(delivered.map((m) => m.position!)), range(1, 1000));
      const history = await subscriber.history.read("busy", {}, rule);
      assert.deepEqual(history.messages.map((m) => m.data), delivered.map((m) => m.message));
    });
  },
);

test(
  "Redis presence: members across processes; a killed process's members leave within presenceTtl; close() removes members",
  {
    timeout: 60_000,
  },
  async () => {
    await withRedis(async (redis, cleanup) => {
      const ttl = 600;
      const a = backend(redis.url, cleanup, ttl);
      const observer = backend(redis.url, cleanup, ttl);
      const peer = await Peer.start(redis.url, cleanup, ttl);
      const byId = (members: { id: string }[]) => members.toSorted((x, y) => x.id.localeCompare(y.id));
      const events = (seen: Seen) =>
        seen.presence.map(({ topic, event }) => `${topic} ${event.type} ${event.member.id}`);

      await a.presence.join("room", { id: "ada", info: { name: "Ada", tags: [] } });
      await peer.send({ op: "join", topic: "room", id: "pat", info: "Pat" });
      assert.deepEqual(byId(await observer.presence.members("room")), [
        { id: "ada", info: { name: "Ada", tags: [] } },
        { id: "pat", info: "Pat" },
      ]);
      assert.deepEqual(await observer.presence.members("elsewhere"), []);
      await waitFor(
        () => observer.seen.presence.length === 2 && a.seen.presence.length === 2,
        5000,
        "join events",
      );
      assert.deepEqual(events(observer.seen), ["room join ada", "room join pat"]);
      assert.deepEqual(events(a.seen), events(observer.seen), "the joining process hears its own join");
      assert.deepEqual(observer.seen.presence[0].event.member.info, { name: "Ada", tags: [] });

      // Refreshes keep live members beyond presenceTtl.
      await delay(3 * ttl);
      assert.equal((await observer.presence.members("room")).length, 2);
      assert.equal(observer.seen.presence.length, 2, "no event while both processes live");

      // A process that dies: its members leave (event included) within presenceTtl, without any read.
      await peer.kill();
      const killedAt = Date.now();
      await waitFor(() => events(observer.seen).includes("room leave pat"), 5000, "pat's leave");
      const took = Date.now() - killedAt;
      assert.ok(took <= ttl + ttl / 3 + 1000, `left within presenceTtl (+ one refresh period): ${took} ms`);
      assert.deepEqual(observer.seen.presence.at(-1)!.event, {
        type: "leave",
        member: { id: "pat", info: "Pat" },
      });
      assert.deepEqual(await observer.presence.members("room"), [{
        id: "ada",
        info: { name: "Ada", tags: [] },
      }]);

      // leave(), then close(): members removed, leave events sent.
      await a.presence.join("other", { id: "ada-2", info: null });
      await observer.presence.leave("nobody", "nobody");
      await a.close();
      assert.deepEqual(await observer.presence.members("room"), []);
      assert.deepEqual(await observer.presence.members("other"), []);
      await waitFor(() => events(observer.seen).includes("other leave ada-2"), 5000, "leave events on close");
      assert.ok(events(observer.seen).includes("room leave ada"));
      assert.equal(
        events(observer.seen).filter((e) => e.includes("leave")).length,
        3,
        "no leave for a non-member",
      );
    });
  },
);

test("Redis history and presence: options and rules that make no sense are refused", async () => {
  for (const options of [{ presenceTtl: 0 }, { historyMetaTtl: -1 }, { connectTimeout: Number.NaN }]) {
    assert.throws(() => redisBackend("redis://127.0.0.1:1", options), InvalidOption, JSON.stringify(options));
  }
  const store = redisBackend("redis://127.0.0.1:1", { onStatus: () => {}, connectTimeout: 0 });
  try {
    await assert.rejects(store.history.append("t", "x", { size: 0, ttl: 1000 }), InvalidOption);
    await assert.rejects(store.history.read("t", {}, { size: 10, ttl: 0 }), InvalidOption);
    await assert.rejects(store.history.read("t", { limit: -1 }, { size: 10, ttl: 1000 }), InvalidOption);
  } finally {
    await store.close();
  }
});
