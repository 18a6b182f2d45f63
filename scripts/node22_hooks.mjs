// `node --import ./scripts/node22_hooks.mjs`: Node 22 strips types but cannot parse `using` and
// `await using` declarations (V8 12.4), which the tests use to stop their servers. This hook has
// esbuild lower them (and strip the types) for every .ts file of the repository, outside node_modules.
// The library itself uses no such syntax: what Node 22 runs of src/ is what a user's Node 22 runs.
import { registerHooks } from "node:module";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { transformSync } from "esbuild";

registerHooks({
  load(url, context, nextLoad) {
    if (!url.startsWith("file:") || !url.endsWith(".ts") || url.includes("/node_modules/")) {
      return nextLoad(url, context);
    }
    const path = fileURLToPath(url);
    const { code } = transformSync(readFileSync(path, "utf8"), {
      loader: "ts",
      format: "esm",
      target: "node22",
      sourcefile: path,
      sourcemap: "inline",
    });
    return { format: "module", source: code, shortCircuit: true };
  },
});
