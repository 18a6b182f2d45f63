// The client in a real browser: wsport's connect() bundled with esbuild and
// run in Debian's Chromium against a wsport server (and its reconnect() too).
import { test } from "node:test";
import assert from "node:assert/strict";
import { blankPageAt, bundleWsport, launchChromium } from "./chromium.ts";
import type { Connection } from "../../mod.ts";
import { startServer } from "../helpers.ts";

test("connect() works in a browser: echo of text and binary, close codes, headers refused", {
  timeout: 60_000,
}, async () => {
  const script = await bundleWsport();
  await using server = startServer(async (ws: Connection) => {
    for await (const message of ws) await ws.send(message);
  }, {
    processRequest: blankPageAt("client"),
  });
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    await page.goto(`${server.http}/`);
    await page.addScriptTag({ content: script });
    const result = await page.evaluate(async () => {
      // deno-lint-ignore no-explicit-any
      const { connect, InvalidOption } = (globalThis as any).wsport;
      const ws = await connect(`ws://${location.host}/echo`); // relative to the page
      await ws.send("from the browser");
      const text = await ws.recv();
      await ws.send(new Uint8Array([1, 2, 3]));
      const binary = await ws.recv();
      await ws.close(1000, "done");
      const closed = await ws.closed;
      let headersError = "";
      try {
        await connect(`ws://${location.host}/echo`, { headers: { authorization: "x" } });
      } catch (error) {
        headersError = error instanceof InvalidOption ? "InvalidOption" : String(error);
      }
      return { text, binary: [...binary], binaryIsView: binary instanceof Uint8Array, closed, headersError };
    });
    assert.deepEqual(result, {
      text: "from the browser",
      binary: [1, 2, 3],
      binaryIsView: true,
      closed: { code: 1000, reason: "done" },
      headersError: "InvalidOption",
    });
  } finally {
    await browser.close();
  }
});
