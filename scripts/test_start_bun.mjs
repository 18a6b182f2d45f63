// Preloaded by scripts/test.mjs into `bun test`: prints a mark when a node:test test starts, so
// that the runner can name the test that is running when a phase must be stopped (Bun prints a
// test's name only once it has finished, and a test stuck in a loop of resolved promises never
// lets Bun's own timeout fire). Nothing else changes: the tests are node:test's own.
import { mock } from "bun:test";
import * as nodeTest from "node:test";

const MARK = "::wsport-test-start::";

function marked(name, fn) {
  // node:test tells a callback-style test (t, done) by the function's length: keep it.
  if (fn.length >= 2) {
    return function (t, done) {
      process.stderr.write(`${MARK}${name}\n`);
      return fn.call(this, t, done);
    };
  }
  return function (t) {
    process.stderr.write(`${MARK}${name}\n`);
    return fn.call(this, t);
  };
}

function wrap(original) {
  const wrapped = function (name, options, fn) {
    if (typeof name === "function") return original(name); // test(fn): no name to print
    if (typeof options === "function") return original(name, marked(name, options));
    if (typeof fn === "function") return original(name, options, marked(name, fn));
    return original(name, options, fn);
  };
  return Object.assign(wrapped, original);
}

const test = wrap(nodeTest.test);
const it = wrap(nodeTest.it);
mock.module("node:test", () => ({ ...nodeTest, test, it, default: test }));
