/**
 * Appends with history vs plain publishes through the Redis backend, and the
 * bytes Redis spends per stored message. Starts its own redis-server on a free
 * port (needs `redis-server` on PATH); one subscribing backend receives every
 * message in both cases. Under 30 s:
 *
 *     deno run -A bench/redis_history.ts [--messages 20000] [--size 64]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import { redisBackend } from "../redis.ts";
import { RedisServer } from "../tests/redis_server.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { messages: { type: "string", default: "20000" }, size: { type: "string", default: "64" } },
});
const MESSAGES = Number(values.messages);
const BYTES = Number(values.size);
const IN_FLIGHT = 64;
const KEPT = 1000;

/** Sends MESSAGES messages with at most `window` in flight; resolves with messages per second. */
async function rate(
  send: () => unknown,
  window: number,
  expect: number,
  received: () => number,
): Promise<number> {
  const before = received();
  const started = performance.now();
  let next = 0;
  const lanes = Array.from({ length: window }, async () => {
    while (next++ < MESSAGES) await send();
  });
  await Promise.all(lanes);
  // Appends reach this process too (the publisher's echo), so count at the subscriber only.
  while (received() - before < expect) await new Promise((resolve) => setTimeout(resolve, 1));
  return MESSAGES / ((performance.now() - started) / 1000);
}

const redis = await RedisServer.start();
const publisher = redisBackend(redis.url);
const subscriber = redisBackend(redis.url);
const admin = new Redis(redis.url);
try {
  let received = 0;
  subscriber.start(() => received++);
  publisher.start(() => {});
  await subscriber.subscribe("plain");
  await subscriber.subscribe("kept");
  const payload = "x".repeat(BYTES);
  const rule = { size: KEPT, ttl: 300_000 };

  const rows: [string, number][] = [];
  for (const window of [1, IN_FLIGHT]) {
    rows.push([
      `publish (no history), ${window} in flight`,
      await rate(() => publisher.publish("plain", payload), window, MESSAGES, () => received),
    ]);
    rows.push([
      `append (history), ${window} in flight`,
      await rate(() => publisher.history.append("kept", payload, rule), window, MESSAGES, () => received),
    ]);
  }
  console.log(
    `${MESSAGES} messages of ${BYTES} bytes, one subscribing backend, redis-server ${
      (await admin.info("server")).match(/redis_version:(\S+)/)?.[1]
    }`,
  );
  for (const [name, perSecond] of rows) {
    console.log(`${name.padEnd(40)} ${Math.round(perSecond).toLocaleString("en")} msg/s`);
  }

  const stream = await admin.memory("USAGE", "wsport:history:kept", "SAMPLES", "0") as number;
  const meta = await admin.memory("USAGE", "wsport:history-meta:kept") as number;
  const length = await admin.xlen("wsport:history:kept");
  console.log(
    `stream of ${length} messages: ${stream.toLocaleString("en")} bytes = ${
      (stream / length).toFixed(1)
    } bytes/message ` +
      `(${BYTES} of payload); meta hash ${meta} bytes`,
  );
} finally {
  admin.disconnect();
  await publisher.close();
  await subscriber.close();
  await redis.stop();
}
