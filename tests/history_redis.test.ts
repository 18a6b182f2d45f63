// The scenarios of issue 18 over Redis: history and presence shared by two servers (and a second
// process, killed with SIGKILL); the in-memory scenarios are in history.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import process from "node:process";
import { spawn } from "node:child_process";
import { Redis } from "ioredis";
import { redisBackend } from "../redis.ts";
import { delay, TestClient, waitFor, within } from "./helpers.ts";
import { FeedClient, feedServer, type Frame, range } from "./history_helpers.ts";
import { RedisServer } from "./redis_server.ts";
import { runArgs } from "./runtime.ts";

const ROUNDS = 5;
/** The presence ttl of the servers here: members of a process that dies disappear within it. */
const PRESENCE_TTL = 1500;
/** The bound the test holds the backend to: its ttl, plus a margin for a loaded machine. */
const PRESENCE_GONE_MS = PRESENCE_TTL + 1000;

const HISTORY = { "feed:*": { size: 1000 }, "small": { size: 5 }, "brief": { size: 100, ttl: 300 } };

function twoServers(redis: RedisServer) {
  return [
    feedServer({ pubsub: redisBackend(redis.url), history: HISTORY }),
    feedServer({ pubsub: redisBackend(redis.url), history: HISTORY }),
  ];
}

/** The last offset the shared history holds for `topic`, once it has stopped growing. */
async function settled(
  server: ReturnType<typeof feedServer>,
  topic: string,
  atLeast: number,
): Promise<number> {
  const deadline = Date.now() + 10_000;
  let offset = 0;
  while (Date.now() < deadline && (offset = (await server.history(topic)).position.offset) < atLeast) {
    await delay(10);
  }
  return offset;
}

test("history over Redis: 50 missed messages arrive once, in order, then live ones, across two servers", {
  timeout: 120_000,
}, async () => {
  const redis = await RedisServer.start();
  try {
    const [one, two] = twoServers(redis);
    await using _one = one;
    await using _two = two;
    const publisher = await TestClient.open(one.url);
    for (let round = 0; round < ROUNDS; round++) {
      const topic = `feed:${round}`;
      const first = await FeedClient.open(two.url);
      await first.subscribe(topic);
      for (let i = 0; i < 3; i++) await one.publish(topic, `before ${i}`);
      await waitFor(() => first.messages(topic).length === 3, 5000, "the first messages, through Redis");
      const since = first.lastPosition(topic);
      await first.close();
      await waitFor(() => two.subscribers(topic) === 0, 5000, "server two to see the client go");

      for (let i = 0; i < 25; i++) await one.publish(topic, `missed ${2 * i}`);
      for (let i = 0; i < 25; i++) publisher.send(`pub ${topic} missed ${2 * i + 1}`);
      assert.equal(await settled(one, topic, 53), 53);

      // Publishing goes on, from both servers, while the client switches from replay to live.
      let running = true;
      let n = 0;
      const publishing = (async () => {
        while (running) {
          if (n % 2 === 0) await one.publish(topic, `live ${n}`);
          else await two.publish(topic, `live ${n}`);
          n++;
          await delay(0);
        }
      })();
      await delay(5);
      const back = await FeedClient.open(two.url);
      const answer = await back.subscribe(topic, since);
      await delay(50);
      running = false;
      await publishing;
      const last = await settled(one, topic, 53 + n);
      await waitFor(
        () => back.messages(topic).at(-1)?.offset === last,
        10_000,
        `live messages up to ${last}`,
      );
      assert.equal(answer!.recovered, true);
      const received: Frame[] = back.messages(topic);
      assert.deepEqual(received.map((f) => f.offset), range(since.offset + 1, last), "once each, in order");
      const stored = await one.history(topic, { since });
      assert.deepEqual(received.map((f) => f.data), stored.messages.map((m) => m.data));
      await back.close();
    }
    publisher.close();
  } finally {
    await redis.stop();
  }
});

test(
  "history over Redis: a replay during a burst sends each message once (read from the history and held live)",
  {
    timeout: 60_000,
  },
  async () => {
    const redis = await RedisServer.start();
    try {
      const [one, two] = twoServers(redis);
      await using _one = one;
      await using _two = two;
      for (let round = 0; round < 10; round++) {
        const topic = `feed:burst-${round}`;
        const since = (await one.publish(topic, "before")).position!;
        // Publishes in flight, 20 at a time, all the while the subscription is made: those that Redis
        // runs between the SUBSCRIBE and the history read arrive live (held) and are in the read as well.
        let publishing = true;
        let n = 0;
        const burst = (async () => {
          while (publishing) {
            await Promise.all(Array.from({ length: 20 }, () => one.publish(topic, `burst ${n++}`)));
          }
        })();
        const back = await FeedClient.open(two.url);
        const answer = await back.subscribe(topic, since);
        publishing = false;
        await burst;
        const last = await settled(one, topic, 1 + n);
        await waitFor(() => back.messages(topic).at(-1)?.offset === last, 10_000, `messages up to ${last}`);
        assert.equal(answer!.recovered, true);
        assert.deepEqual(
          back.messages(topic).map((f) => f.offset),
          range(since.offset + 1, last),
          "once each",
        );
        await back.close();
      }
    } finally {
      await redis.stop();
    }
  },
);

test("recovery over Redis fails with the reason (too far behind, expired, FLUSHALL); live goes on", {
  timeout: 60_000,
}, async () => {
  const redis = await RedisServer.start();
  const admin = new Redis(redis.url);
  try {
    const [one, two] = twoServers(redis);
    await using _one = one;
    await using _two = two;
    const client = await FeedClient.open(two.url);

    const atStart = (await one.publish("small", "zero")).position!;
    for (let i = 1; i <= 10; i++) await one.publish("small", `n${i}`);
    const behind = await client.subscribe("small", atStart);
    assert.equal(behind!.recovered, false);
    assert.equal(behind!.reason, "too-far-behind");

    const brief = (await one.publish("brief", "one")).position!;
    await one.publish("brief", "two");
    await delay(600);
    const expired = await client.subscribe("brief", brief);
    assert.equal(expired!.recovered, false);
    assert.equal(expired!.reason, "expired");

    const before = (await one.publish("feed:x", "before the flush")).position!;
    await admin.flushall();
    await one.publish("feed:x", "after the flush");
    const epoch = await client.subscribe("feed:x", before);
    assert.equal(epoch!.recovered, false);
    assert.equal(epoch!.reason, "epoch");

    // Live delivery goes on for every subscription, through Redis.
    for (const topic of ["small", "brief", "feed:x"]) await one.publish(topic, `live ${topic}`);
    await waitFor(() => client.frames.filter((f) => f.data?.startsWith("live")).length === 3, 10_000, "live");
    await client.close();
  } finally {
    admin.disconnect();
    await redis.stop();
  }
});

test("presence over Redis: members of two processes; a killed process's members go within the stated time", {
  timeout: 90_000,
}, async () => {
  const redis = await RedisServer.start();
  const child = spawn(
    process.execPath,
    runArgs(new URL("./fixtures/history_server.ts", import.meta.url).pathname),
    {
      env: { ...process.env, REDIS_URL: redis.url, PRESENCE_TTL: String(PRESENCE_TTL) },
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  try {
    const port = await within(
      new Promise<number>((resolve) => {
        child.stdout!.on("data", (chunk) => {
          const match = /listening (\d+)/.exec(String(chunk));
          if (match) resolve(Number(match[1]));
        });
      }),
      15_000,
      "the second process to listen",
    );
    await using here = feedServer({
      pubsub: redisBackend(redis.url, { presenceTtl: PRESENCE_TTL }),
      history: HISTORY,
    });
    const watcher = await FeedClient.open(here.url);
    await watcher.subscribe("room", undefined, true);
    const local = await TestClient.open(here.url);
    local.send("join room ada");
    const remote = await TestClient.open(`ws://127.0.0.1:${port}`);
    remote.send("join room bob");
    await waitFor(
      () => watcher.frames.filter((f) => f.presence?.type === "join").length === 2,
      10_000,
      "joins",
    );
    const names = async () =>
      (await here.presence("room")).map((m) => (m.info as { name: string }).name).sort();
    assert.deepEqual(await names(), ["ada", "bob"]);

    child.kill("SIGKILL");
    const killed = Date.now();
    const deadline = killed + PRESENCE_GONE_MS;
    while (Date.now() < deadline && (await names()).includes("bob")) await delay(100);
    assert.deepEqual(await names(), ["ada"], `bob is gone within ${PRESENCE_GONE_MS} ms`);
    console.log(`a killed process's member was gone after ${Date.now() - killed} ms`);
    const ada = watcher.frames.find((f) =>
      f.presence?.type === "join" && (f.presence.member.info as { name: string }).name === "ada"
    )!;
    local.close();
    const adaLeft = (f: Frame) =>
      f.presence?.type === "leave" && f.presence.member.id === ada.presence!.member.id;
    await waitFor(() => watcher.frames.some(adaLeft), 10_000, "ada's leave event");
    await watcher.close();
  } finally {
    child.kill("SIGKILL");
    await redis.stop();
  }
});
