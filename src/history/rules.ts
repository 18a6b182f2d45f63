/**
 * Which topics keep history, and how much: the server's `history` option,
 * validated once, then looked up on each publish to a topic.
 *
 * @module
 */
import { InvalidOption } from "../errors.ts";
import type { HistoryRule } from "./types.ts";

/** The server's `history` option: rules by exact topic or `prefix*`, or a function of the topic. */
export type HistoryOption =
  | Record<string, HistoryRule>
  | ((topic: string) => HistoryRule | undefined);

/** A topic's rule with every default filled in, or `undefined` when the topic keeps no history. */
export type RuleLookup = (topic: string) => Required<HistoryRule> | undefined;

/** How long a stored message is kept when its rule names no `ttl`: 5 minutes. */
export const DEFAULT_HISTORY_TTL = 300_000;

/** Fills in the default ttl and rejects sizes and ttls that make no sense. */
export function checkRule(name: string, rule: HistoryRule): Required<HistoryRule> {
  if (typeof rule !== "object" || rule === null) {
    throw new InvalidOption(`history[${JSON.stringify(name)}] must be an object { size, ttl? }`);
  }
  const { size, ttl = DEFAULT_HISTORY_TTL } = rule;
  if (!Number.isInteger(size) || size < 1) {
    throw new InvalidOption(`history[${JSON.stringify(name)}].size must be an integer >= 1, got ${size}`);
  }
  if (typeof ttl !== "number" || !(ttl > 0) || !Number.isFinite(ttl)) {
    throw new InvalidOption(`history[${JSON.stringify(name)}].ttl must be a finite number > 0, got ${ttl}`);
  }
  return { size, ttl };
}

/**
 * Turns the `history` option into a lookup: an exact topic name first, then
 * the longest `prefix*` that matches. A function is asked on every lookup
 * and its answer checked as the rules of a record are.
 */
export function historyRules(option: HistoryOption): RuleLookup {
  if (typeof option === "function") {
    return (topic) => {
      const rule = option(topic);
      return rule === undefined ? undefined : checkRule(topic, rule);
    };
  }
  if (typeof option !== "object" || option === null) {
    throw new InvalidOption("history must be a record of rules or a function of the topic");
  }
  const exact = new Map<string, Required<HistoryRule>>();
  const prefixes: [string, Required<HistoryRule>][] = [];
  for (const [key, rule] of Object.entries(option)) {
    const checked = checkRule(key, rule);
    if (key.endsWith("*")) prefixes.push([key.slice(0, -1), checked]);
    else exact.set(key, checked);
  }
  // Longest first, so that the first match is the longest.
  prefixes.sort((a, b) => b[0].length - a[0].length);
  return (topic) => {
    const rule = exact.get(topic);
    if (rule) return rule;
    for (const [prefix, prefixRule] of prefixes) if (topic.startsWith(prefix)) return prefixRule;
    return undefined;
  };
}
