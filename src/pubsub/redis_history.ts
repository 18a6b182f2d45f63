/**
 * Topic history in Redis Streams, for the Redis backend.
 *
 * Keys, for a topic `T` and the backend's `prefix` `P`:
 *
 * - `P` + `history:` + `T`: a stream of the topic's messages, entry id
 *   `0-<offset>`, fields `k` (`t` text, `b` binary), `t` (Redis time of the
 *   append, ms) and `d` (the body). Trimmed to exactly `size` entries; the key
 *   expires `ttl` after the last append.
 * - `P` + `history-meta:` + `T`: a hash with the topic's `epoch` and top
 *   `offset`. It expires `max(historyMetaTtl, ttl)` after the last append, so
 *   that it outlives the stream: an expired stream whose meta survives reads
 *   as `reason: "expired"`, a lost meta (FLUSHALL, a Redis restarted without
 *   persistence) as a new epoch.
 *
 * Each append is one Lua script, so storing and publishing happen together:
 * a process never receives a live message that the history lacks, and every
 * process receives them in offset order.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { Redis } from "ioredis";
import type {
  HistoryRead,
  HistoryReadOptions,
  HistoryRule,
  HistoryStore,
  RecoveryFailure,
  StoredMessage,
  StreamPosition,
} from "../history/types.ts";
import type { Message } from "../transport.ts";
import { checkNumber } from "../options.ts";
import { body, Kind, toMessage } from "./redis_wire.ts";

/** The key names of a topic's history. */
export function historyKeys(prefix: string, topic: string): { stream: string; meta: string } {
  return { stream: `${prefix}history:${topic}`, meta: `${prefix}history-meta:${topic}` };
}

/** Redis time in ms, inside a script. */
const NOW = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)`;

/**
 * Creates the epoch if the meta hash is gone (with the candidate passed in
 * ARGV[1]); a new epoch starts a new stream.
 */
const EPOCH = `if redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1 then
  redis.call('DEL', KEYS[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')`;

/**
 * KEYS: meta, stream. ARGV: epoch candidate, kind (t|b), body, size, ttl (ms),
 * meta ttl (ms), channel, first byte of the live payload.
 * Returns { epoch, offset }.
 */
const APPEND = `${EPOCH}
local offset = redis.call('HINCRBY', KEYS[1], 'offset', 1)
${NOW}
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], string.format('0-%d', offset),
  'k', ARGV[2], 't', string.format('%d', now), 'd', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PUBLISH', ARGV[7], ARGV[8] .. string.char(#epoch) .. epoch .. string.format('%d', offset) .. ':' .. ARGV[3])
return { epoch, offset }`;

/**
 * KEYS: meta, stream. ARGV: epoch candidate, meta ttl (ms), since's epoch
 * ('' without since), since's offset, limit (-1: none), ttl (ms), size.
 * Returns { epoch, top offset, reason ('' when recovered), { offset, kind, body }... }.
 *
 * Entries older than ttl are skipped even if Redis has not expired them yet:
 * they form a prefix of the stream (appends carry Redis time), so the first
 * entry kept ends the skipping. A missing message after since was dropped by
 * size when more than size messages came after since (exact trimming keeps
 * the last size), else by ttl.
 */
const READ = `local created = redis.call('HSETNX', KEYS[1], 'epoch', ARGV[1]) == 1
if created then
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local top = tonumber(redis.call('HGET', KEYS[1], 'offset')) or 0
local hasSince = ARGV[3] ~= ''
local from = 0
if hasSince then
  from = tonumber(ARGV[4])
  if ARGV[3] ~= epoch or from > top then return { epoch, top, 'epoch', {} } end
end
local limit = tonumber(ARGV[5])
${NOW}
local cutoff = now - tonumber(ARGV[6])
local out = {}
local first = nil
local start = from + 1
local done = false
while not done do
  local entries = redis.call('XRANGE', KEYS[2], string.format('0-%d', start), '+', 'COUNT', 100)
  for _, entry in ipairs(entries) do
    local offset = tonumber(string.sub(entry[1], 3))
    local fields = entry[2]
    local kind, time, data = 't', 0, ''
    for i = 1, #fields, 2 do
      local name = fields[i]
      if name == 'k' then kind = fields[i + 1]
      elseif name == 't' then time = tonumber(fields[i + 1])
      elseif name == 'd' then data = fields[i + 1] end
    end
    if first == nil and time > cutoff then first = offset end
    if first ~= nil then
      if limit >= 0 and #out >= limit then done = true break end
      out[#out + 1] = { offset, kind, data }
    end
    start = offset + 1
  end
  if #entries < 100 then done = true end
end
local reason = ''
if hasSince and from < top and first ~= from + 1 then
  if top - from > tonumber(ARGV[7]) then reason = 'too-far-behind' else reason = 'expired' end
end
return { epoch, top, reason, out }`;

type Script = (...args: (string | number | Buffer)[]) => Promise<unknown>;

/** The backend's history: `client` is its command connection (not the subscriber). */
export function redisHistory(
  client: Redis,
  options: {
    prefix: string;
    metaTtl: number;
    /** Waits for the first connection, once. */
    ready(): Promise<void>;
  },
): HistoryStore {
  client.defineCommand("wsportHistoryAppend", { numberOfKeys: 2, lua: APPEND });
  client.defineCommand("wsportHistoryRead", { numberOfKeys: 2, lua: READ });
  const commands = client as unknown as Record<string, Script>;
  const metaTtl = (rule: Required<HistoryRule>) => Math.max(options.metaTtl, rule.ttl);

  return {
    async append(topic: string, message: Message, rule: Required<HistoryRule>): Promise<StreamPosition> {
      checkRule(rule);
      await options.ready();
      const { stream, meta } = historyKeys(options.prefix, topic);
      const text = typeof message === "string";
      const [epoch, offset] = await commands.wsportHistoryAppend(
        meta,
        stream,
        newEpoch(),
        text ? "t" : "b",
        body(message),
        Math.floor(rule.size),
        Math.ceil(rule.ttl),
        Math.ceil(metaTtl(rule)),
        options.prefix + topic,
        String.fromCharCode(text ? Kind.STORED_TEXT : Kind.STORED_BINARY),
      ) as [string, number];
      return { epoch, offset };
    },

    async read(topic: string, read: HistoryReadOptions, rule: Required<HistoryRule>): Promise<HistoryRead> {
      checkRule(rule);
      if (read.limit !== undefined) checkNumber("limit", read.limit, 0);
      await options.ready();
      const { stream, meta } = historyKeys(options.prefix, topic);
      const [epoch, top, reason, entries] = await commands.wsportHistoryReadBuffer(
        meta,
        stream,
        newEpoch(),
        Math.ceil(metaTtl(rule)),
        read.since?.epoch ?? "",
        read.since?.offset ?? 0,
        read.limit === undefined ? -1 : Math.floor(read.limit),
        Math.ceil(rule.ttl),
        Math.floor(rule.size),
      ) as [Buffer, number, Buffer, [number, Buffer, Buffer][]];
      const epochText = epoch.toString("latin1");
      const messages: StoredMessage[] = entries.map(([offset, kind, data]) => ({
        data: toMessage(data, kind.toString() === "t"),
        position: { epoch: epochText, offset },
      }));
      const position = { epoch: epochText, offset: top };
      if (reason.length === 0) return { messages, position, recovered: true };
      return { messages, position, recovered: false, reason: reason.toString() as RecoveryFailure };
    },
  };
}

function checkRule(rule: Required<HistoryRule>): void {
  checkNumber("history size", rule.size, 1);
  checkNumber("history ttl", rule.ttl, 1);
}

/** A random epoch candidate: the script keeps it only when the topic has none. */
function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}
