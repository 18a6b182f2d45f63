/**
 * What the browser tests share: Debian's Chromium, driven by playwright-core, and wsport's mod.ts
 * bundled with esbuild for a page.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { build } from "esbuild";
import { type Browser, chromium } from "playwright-core";

const CHROMIUM = "/usr/bin/chromium";

/** mod.ts as one script for a page: once added, `globalThis.wsport` holds its exports. */
export async function bundleWsport(): Promise<string> {
  const bundle = await build({
    entryPoints: [new URL("../../mod.ts", import.meta.url).pathname],
    bundle: true,
    format: "iife",
    globalName: "wsport",
    platform: "browser",
    write: false,
    // The ws engine's `import.meta.resolve("ws")` is in the bundle but never runs in a browser.
    logOverride: { "empty-import-meta": "silent" },
  });
  return bundle.outputFiles[0].text;
}

/** Launches Chromium headless; fails naming the Debian package when it is missing. */
export function launchChromium(): Promise<Browser> {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: install the Debian package "chromium"`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
  });
}

/** A `processRequest` that answers `GET /` with an empty page, so that a page has the server's origin. */
export function blankPageAt(title: string): (request: Request) => Response | undefined {
  return (request) => {
    if (new URL(request.url).pathname !== "/") return undefined;
    return new Response(`<!doctype html><title>${title}</title>`, {
      headers: { "content-type": "text/html" },
    });
  };
}
