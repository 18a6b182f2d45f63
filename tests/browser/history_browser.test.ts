// followTopics() in a real browser: wsport bundled with esbuild and run in Debian's Chromium
// against a server with in-memory history; its connections are closed twice while messages are
// published, and the page still gets every message once, in order.
import { test } from "node:test";
import assert from "node:assert/strict";
import { blankPageAt, bundleWsport, launchChromium } from "./chromium.ts";
import { delay } from "../helpers.ts";
import { feedServer } from "../history_helpers.ts";

test("followTopics() in a browser resumes after its connection drops: each message once, in order", {
  timeout: 60_000,
}, async () => {
  const script = await bundleWsport();
  await using server = feedServer({
    history: { "feed": { size: 1000 } },
    processRequest: blankPageAt("follow"),
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.http}/`);
    await page.addScriptTag({ content: script });
    await page.evaluate(() => {
      // deno-lint-ignore no-explicit-any
      const g = globalThis as any;
      g.seen = [];
      g.answers = [];
      g.follower = g.wsport.followTopics(`ws://${location.host}/follow`, ["feed"], {
        minDelay: 50,
        maxDelay: 200,
      });
      (async () => {
        for await (const event of g.follower) {
          if (event.type === "message") g.seen.push(event.data);
          if (event.type === "subscribed") g.answers.push(event.recovered);
        }
      })().catch((error) => g.answers.push(String(error)));
    });
    const answers = () => page.evaluate(() => (globalThis as unknown as { answers: boolean[] }).answers);
    const seen = () => page.evaluate(() => (globalThis as unknown as { seen: string[] }).seen);
    /** Asks the page until `done` holds of its answer, for up to 5 s; returns the last answer. */
    const poll = async <T>(ask: () => Promise<T>, done: (value: T) => boolean): Promise<T> => {
      const deadline = Date.now() + 5000;
      let value = await ask();
      while (!done(value) && Date.now() < deadline) {
        await delay(20);
        value = await ask();
      }
      return value;
    };
    const expected: string[] = [];
    let n = 0;
    const publish = async () => {
      const text = `m${n++}`;
      await server.publish("feed", text);
      expected.push(text);
    };
    for (let drop = 1; drop <= 3; drop++) {
      assert.deepEqual(await poll(answers, (got) => got.length >= drop), Array(drop).fill(true));
      for (let i = 0; i < 10; i++) await publish();
      await poll(seen, (got) => got.length >= expected.length);
      for (const connection of server.connections) await connection.close(1012, "going away for a moment");
      for (let i = 0; i < 10; i++) await publish(); // while the page is away
    }
    assert.deepEqual(await poll(answers, (got) => got.length >= 4), [true, true, true, true]);
    assert.deepEqual(await poll(seen, (got) => got.length >= expected.length), expected);
    await page.evaluate(() => (globalThis as unknown as { follower: { close(): void } }).follower.close());
  } finally {
    await browser.close();
  }
});
