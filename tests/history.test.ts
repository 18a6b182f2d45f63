// History, recovery and presence with the in-memory store (one server): the
// scenarios of issue 18. The same scenarios over Redis are in history_redis.test.ts.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  broadcastChannelBackend,
  type Connection,
  followTopics,
  InvalidOption,
  jsonEnvelope,
  type StreamPosition,
  type TopicEvent,
} from "../mod.ts";
import { delay, startServer, TestClient, waitFor } from "./helpers.ts";
import { FeedClient, feedServer, type Frame, range } from "./history_helpers.ts";

const ROUNDS = 5;

/**
 * Publishes to `topic` until stopped, alternating the server's publish and a
 * client's ws.publish, one message per turn: publishing goes on while a
 * subscriber switches from replay to live.
 */
function keepPublishing(
  server: { publish(topic: string, data: string): Promise<unknown> },
  publisher: TestClient,
  topic: string,
) {
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      if (n % 2 === 0) await server.publish(topic, `live ${n}`);
      else publisher.send(`pub ${topic} live ${n}`);
      n++;
      await delay(0);
    }
  })();
  return async () => {
    running = false;
    await done;
  };
}

/** Asserts that `frames` are exactly the messages of offsets `from`..`to`, as the history holds them. */
async function assertExactly(
  server: {
    history(
      topic: string,
      options: { since: StreamPosition },
    ): Promise<{ messages: readonly { data: unknown; position: StreamPosition }[] }>;
  },
  topic: string,
  frames: Frame[],
  since: StreamPosition,
  to: number,
) {
  const offsets = frames.map((f) => f.offset);
  assert.deepEqual(offsets, range(since.offset + 1, to), "every offset once, in order, no gap");
  assert.ok(frames.every((f) => f.epoch === since.epoch), "one epoch");
  const stored = await server.history(topic, { since });
  assert.deepEqual(frames.map((f) => f.data), stored.messages.map((m) => m.data), "the data as stored");
}

test("history: 50 missed messages arrive once, in order, then live ones, while publishing goes on (memory)", {
  timeout: 60_000,
}, async () => {
  await using server = feedServer({ history: { "feed:*": { size: 10_000 } } });
  const publisher = await TestClient.open(server.url);
  for (let round = 0; round < ROUNDS; round++) {
    const topic = `feed:${round}`;
    const first = await FeedClient.open(server.url);
    assert.equal((await first.subscribe(topic))!.recovered, true);
    for (let i = 0; i < 3; i++) await server.publish(topic, `before ${i}`);
    await waitFor(() => first.messages(topic).length === 3, 5000, "the first messages");
    const since = first.lastPosition(topic);
    await first.close();
    await waitFor(() => server.subscribers(topic) === 0, 5000, "the server to see the client go");

    // 50 published while the client is away: half by the server, half by another client.
    for (let i = 0; i < 25; i++) await server.publish(topic, `missed ${2 * i}`);
    for (let i = 0; i < 25; i++) publisher.send(`pub ${topic} missed ${2 * i + 1}`);
    const deadline = Date.now() + 5000;
    let stored = 0;
    while (Date.now() < deadline && (stored = (await server.history(topic)).position.offset) < 53) {
      await delay(5);
    }
    assert.equal(stored, 53);

    const stop = keepPublishing(server, publisher, topic);
    await delay(5);
    const back = await FeedClient.open(server.url);
    const answer = await back.subscribe(topic, since);
    await delay(20);
    await stop();
    const last = (await server.history(topic)).position.offset;
    await waitFor(
      () => back.messages(topic).at(-1)?.offset === last,
      5000,
      `the live messages up to ${last}`,
    );
    assert.equal(answer!.recovered, true);
    const received = back.messages(topic);
    assert.deepEqual(received.slice(0, 50).map((f) => f.offset), range(4, 53), "the 50 missed ones first");
    assert.ok(received.length > 50, "then live ones");
    await assertExactly(server, topic, received, since, last);
    await back.close();
  }
  publisher.close();
});

test(
  "recovery fails with the reason (too far behind, expired, another epoch, no history); live goes on (memory)",
  {
    timeout: 30_000,
  },
  async () => {
    const history = {
      "small": { size: 5 },
      "brief": { size: 100, ttl: 200 },
      "feed": { size: 100 },
      "ahead": { size: 10 },
    };
    await using server = feedServer({ history });
    const client = await FeedClient.open(server.url);

    // Too far behind: 10 published after the position, 5 kept.
    const atStart = (await server.publish("small", "zero")).position!;
    for (let i = 1; i <= 10; i++) await server.publish("small", `n${i}`);
    assert.deepEqual(await client.subscribe("small", atStart), {
      recovered: false,
      reason: "too-far-behind",
      position: { epoch: atStart.epoch, offset: 11 },
    });

    // Expired: the message after the position outlived the ttl.
    const brief = (await server.publish("brief", "one")).position!;
    await server.publish("brief", "two");
    await delay(300);
    const expired = await client.subscribe("brief", brief);
    assert.equal(expired!.recovered, false);
    assert.equal(expired!.reason, "expired");

    // Another epoch: a position from another server instance (a restarted process).
    await using other = feedServer({ history });
    const foreign = (await other.publish("feed", "elsewhere")).position!;
    await server.publish("feed", "here");
    const epoch = await client.subscribe("feed", foreign);
    assert.equal(epoch!.recovered, false);
    assert.equal(epoch!.reason, "epoch");
    assert.notEqual(epoch!.position!.epoch, foreign.epoch);

    // A position past the topic's last message, in its epoch, cannot be real: it reads as another epoch.
    const last = (await server.publish("ahead", "only")).position!;
    const ahead = await client.subscribe("ahead", { epoch: last.epoch, offset: last.offset + 5 });
    assert.equal(ahead!.recovered, false);
    assert.equal(ahead!.reason, "epoch");
    assert.deepEqual(ahead!.position, last);

    // A topic without history cannot resume.
    const none = await client.subscribe("plain", { epoch: foreign.epoch, offset: 1 });
    assert.deepEqual(none, { recovered: false, reason: "no-history" });

    // Every subscription is live all the same, and nothing of the lost history was sent.
    assert.deepEqual(client.messages("small"), []);
    assert.deepEqual(client.messages("feed"), []);
    for (const topic of ["small", "brief", "feed", "plain"]) await server.publish(topic, `live ${topic}`);
    await waitFor(() => client.frames.filter((f) => f.data?.startsWith("live")).length === 4, 5000, "live");
    assert.deepEqual(client.messages("small").map((f) => [f.data, f.offset]), [["live small", 12]]);
    assert.deepEqual(client.messages("plain").map((f) => [f.data, f.offset]), [["live plain", undefined]]);
    await client.close();
  },
);

test("history: publish resolves with positions, history() reads since and limit, rules are checked", async () => {
  await using server = startServer(() => {}, {
    history: { "a*": { size: 1 }, "ab*": { size: 3 }, "exact": { size: 2, ttl: 100 } },
  });
  const positions = [];
  for (let i = 0; i < 5; i++) positions.push((await server.publish("abc", `m${i}`)).position!);
  assert.deepEqual(positions.map((p) => p.offset), [1, 2, 3, 4, 5]);
  assert.equal(new Set(positions.map((p) => p.epoch)).size, 1);
  assert.equal((await server.publish("no rule", "x")).position, undefined);
  // The longest prefix wins: "ab*" keeps 3, "a*" keeps 1.
  const abc = await server.history("abc");
  assert.deepEqual(abc.messages.map((m) => m.data), ["m2", "m3", "m4"]);
  assert.deepEqual(abc.position, positions[4]);
  assert.equal(abc.recovered, true);
  for (const text of ["x", "y"]) await server.publish("axe", text);
  assert.deepEqual((await server.history("axe")).messages.map((m) => m.data), ["y"]);
  const page = await server.history("abc", { since: positions[2], limit: 1 });
  assert.deepEqual(page.messages.map((m) => [m.data, m.position.offset]), [["m3", 4]]);
  // Binary data is stored as a copy: reusing the buffer does not change the history.
  const bytes = new Uint8Array([1, 2, 3]);
  await server.publish("exact", bytes);
  bytes[0] = 9;
  assert.deepEqual((await server.history("exact")).messages[0].data, new Uint8Array([1, 2, 3]));
  await delay(150);
  assert.deepEqual((await server.history("exact")).messages, [], "trimmed by ttl on read");
  await assert.rejects(server.history("no rule"), InvalidOption);

  for (
    const bad of [{ size: 0 }, { size: 1.5 }, { size: 1, ttl: 0 }, { size: 1, ttl: -1 }, {
      size: 1,
      ttl: Infinity,
    }]
  ) {
    assert.throws(() => startServer(() => {}, { history: { t: bad } }), InvalidOption, JSON.stringify(bad));
  }
  await using byFunction = startServer(() => {}, {
    history: (topic) => (topic === "bad" ? { size: -1 } : undefined),
  });
  assert.throws(() => byFunction.publish("bad", "x"), InvalidOption);
});

test("history with the BroadcastChannel backend is refused; so is presence", async () => {
  assert.throws(
    () => startServer(() => {}, { history: { t: { size: 1 } }, pubsub: broadcastChannelBackend("h18") }),
    (error: unknown) => error instanceof InvalidOption && /ordering authority/.test(error.message),
  );
  const joined = Promise.withResolvers<unknown>();
  await using server = startServer((ws: Connection) => {
    ws.join("room", {}).then(() => joined.resolve("joined"), joined.resolve);
  }, { pubsub: broadcastChannelBackend("h18") });
  const client = await TestClient.open(server.url);
  assert.ok(await joined.promise instanceof InvalidOption);
  await assert.rejects(server.presence("room"), InvalidOption);
  client.close();
});

test("subscriptions without options get frames untouched; an envelope gets positions (memory)", async () => {
  const envelopes: string[] = [];
  const counting = (event: TopicEvent) => `${envelopes.push(event.topic)}|${jsonEnvelope(event)}`;
  await using server = startServer(async (ws: Connection) => {
    if (ws.url.searchParams.has("envelope")) {
      await ws.subscribe("kept", { envelope: counting });
      await ws.subscribe("plain", { envelope: jsonEnvelope });
    } else {
      const kept = await ws.subscribe("kept");
      assert.deepEqual(kept.recovered, true);
      ws.subscribe("plain"); // not awaited: the old way still works
    }
    await ws.send("ready");
    await ws.closed;
  }, { history: { kept: { size: 10 } } });
  const plain = await TestClient.open(server.url);
  const plain2 = await TestClient.open(server.url);
  const wrapped = await TestClient.open(`${server.url}/?envelope`);
  const wrapped2 = await TestClient.open(`${server.url}/?envelope`);
  for (const client of [plain, plain2, wrapped, wrapped2]) assert.equal(await client.next(), "ready");
  await server.publish("kept", "text");
  await server.publish("kept", new Uint8Array([0, 255]));
  await server.publish("plain", "no history");
  for (const client of [plain, plain2]) {
    assert.equal(await client.next(), "text");
    assert.deepEqual(await client.next(), new Uint8Array([0, 255]));
    assert.equal(await client.next(), "no history");
  }
  for (const client of [wrapped, wrapped2]) {
    const [one, two] = [await client.next(), await client.next()].map((m) =>
      JSON.parse((m as string).split("|")[1])
    );
    assert.equal(one.data, "text");
    assert.equal(one.offset, 1);
    assert.deepEqual([two.data, two.binary, two.offset], ["AP8=", true, 2]);
    assert.equal(one.epoch, two.epoch);
    assert.deepEqual(JSON.parse(await client.next() as string), { topic: "plain", data: "no history" });
  }
  assert.equal(envelopes.length, 2, "the envelope wraps each message once for all its subscribers");
  for (const client of [plain, plain2, wrapped, wrapped2]) client.close();
});

test("presence: join, leave, members, leave on close; events only to subscribers that asked (memory)", async () => {
  await using server = feedServer();
  const watcher = await FeedClient.open(server.url);
  const deaf = await FeedClient.open(server.url);
  await watcher.subscribe("room", undefined, true);
  await deaf.subscribe("room");
  const ada = await TestClient.open(server.url);
  const bob = await TestClient.open(server.url);
  ada.send("join room ada");
  await waitFor(() => watcher.frames.some((f) => f.presence), 5000, "ada's join event");
  bob.send("join room bob");
  await waitFor(() => watcher.frames.filter((f) => f.presence).length === 2, 5000, "bob's join event");
  const members = await server.presence("room");
  assert.deepEqual(members.map((m) => m.info), [{ name: "ada" }, { name: "bob" }]);
  assert.equal(new Set(members.map((m) => m.id)).size, 2);
  const [adaId, bobId] = members.map((m) => m.id);
  ada.send("leave room");
  bob.close();
  await waitFor(() => watcher.frames.filter((f) => f.presence).length === 4, 5000, "two leave events");
  const events = watcher.frames.filter((f) => f.presence).map((
    f,
  ) => [f.presence!.type, f.presence!.member.id]);
  assert.deepEqual(events.slice(0, 2), [["join", adaId], ["join", bobId]]);
  assert.deepEqual(
    new Set(events.slice(2).map(String)),
    new Set([["leave", adaId], ["leave", bobId]].map(String)),
  );
  assert.deepEqual(await server.presence("room"), []);
  assert.deepEqual(deaf.frames.filter((f) => f.presence), [], "no presence events without presence: true");
  assert.throws(
    () => server.connections.values().next().value!.subscribe("x", { presence: true }),
    InvalidOption,
  );
  for (const client of [watcher, deaf]) await client.close();
  ada.close();
});

test("followTopics() resumes every topic after reconnections: each message once, in order (memory)", {
  timeout: 30_000,
}, async () => {
  await using server = feedServer({ history: { "feed:*": { size: 1000 } } });
  const follower = followTopics(server.url, ["feed:a", "feed:b"], { minDelay: 50, maxDelay: 200 });
  const seen: string[] = [];
  const answers: unknown[] = [];
  const iterating = (async () => {
    for await (const event of follower) {
      if (event.type === "message") seen.push(`${event.topic} ${event.data}`);
      if (event.type === "subscribed") answers.push([event.topic, event.recovered]);
    }
  })();
  let n = 0;
  const expected: string[] = [];
  const publish = async () => {
    const topic = n % 3 === 0 ? "feed:b" : "feed:a";
    await server.publish(topic, String(n));
    expected.push(`${topic} ${n++}`);
  };
  await waitFor(() => answers.length === 2, 5000, "the first subscriptions");
  for (let drop = 0; drop < 3; drop++) {
    for (let i = 0; i < 10; i++) await publish();
    await waitFor(() => seen.length === expected.length, 5000, "the live messages");
    for (const connection of server.connections) await connection.close(1012, "restarting");
    for (let i = 0; i < 20; i++) await publish(); // while the follower is away
    await waitFor(() => answers.length === 2 * (drop + 2), 5000, "the resubscriptions");
  }
  await waitFor(() => seen.length >= expected.length, 5000, "every message");
  // Each topic in its order (a resubscription replays one topic, then the other).
  for (const topic of ["feed:a", "feed:b"]) {
    const ofTopic = (list: string[]) => list.filter((entry) => entry.startsWith(`${topic} `));
    assert.deepEqual(ofTopic(seen), ofTopic(expected), topic);
  }
  assert.equal(seen.length, expected.length);
  assert.ok(answers.every((answer) => (answer as [string, boolean])[1] === true), JSON.stringify(answers));
  assert.equal(follower.positions.get("feed:a")!.offset + follower.positions.get("feed:b")!.offset, n);
  follower.close();
  await iterating;
});
