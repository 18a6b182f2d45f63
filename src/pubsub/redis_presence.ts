/**
 * Topic presence in Redis, for the Redis backend.
 *
 * Key, for a topic `T` and the backend's `prefix` `P`: `P` + `presence:` + `T`,
 * a hash from member id to `{"expires":<Redis time, ms>,"process":<id>,"info":<info>}`.
 * Each process rewrites its own members' entries every `ttl / 3` with a new
 * expiry (`ttl` ahead), so the members of a process that died expire within
 * `ttl` of its last refresh. Expired entries are never returned; they are
 * removed, with a `"leave"` event, by the next `members()` of their topic or
 * the next refresh of any process with members in that topic (best effort:
 * if no live process has members in the topic and nobody reads it, the hash
 * expires with no event). The hash itself expires `ttl` after its last write.
 *
 * Events go out on one channel for the whole backend (`P` + `presence`), as
 * `[4][JSON]` payloads, from inside the scripts that change the hash.
 *
 * @module
 */
import { clearInterval, setInterval } from "node:timers";
import type { Redis } from "ioredis";
import type { PresenceMember, PresenceStore } from "../history/types.ts";

/** The key of a topic's presence hash. */
export function presenceKey(prefix: string, topic: string): string {
  return `${prefix}presence:${topic}`;
}

/**
 * Shared by the scripts. KEYS: the hash. ARGV[1]: ttl (ms), ARGV[2]: the
 * presence channel, ARGV[3]: the topic as JSON.
 */
const COMMON = `local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local function announce(type, idJson, value)
  redis.call('PUBLISH', ARGV[2], string.char(4) .. '{"type":"' .. type .. '","topic":' .. ARGV[3] ..
    ',"id":' .. idJson .. ',"member":' .. value .. '}')
end
local function sweep(live)
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    local expires = tonumber(string.match(all[i + 1], '^{"expires":(%d+)'))
    if expires == nil or expires <= now then
      redis.call('HDEL', KEYS[1], all[i])
      if expires ~= nil then announce('leave', cjson.encode(all[i]), all[i + 1]) end
    elseif live then
      live[#live + 1] = all[i]
      live[#live + 1] = all[i + 1]
    end
  end
  return live
end`;

/**
 * Writes members (ARGV[5..]: id, id as JSON, the entry after its expiry) with
 * a new expiry, announces them (all of them when ARGV[4] is '1', else those
 * that were missing), keeps the hash alive, and sweeps expired ones.
 */
const REFRESH = `${COMMON}
local expires = string.format('%d', now + tonumber(ARGV[1]))
for i = 5, #ARGV, 3 do
  local value = '{"expires":' .. expires .. ARGV[i + 2]
  local added = redis.call('HSET', KEYS[1], ARGV[i], value) == 1
  if added or ARGV[4] == '1' then announce('join', ARGV[i + 1], value) end
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
sweep(nil)
return 1`;

/** Removes the member ARGV[4] (ARGV[5]: its id as JSON) and announces it if it was there. */
const LEAVE = `${COMMON}
local value = redis.call('HGET', KEYS[1], ARGV[4])
if not value then return 0 end
redis.call('HDEL', KEYS[1], ARGV[4])
announce('leave', ARGV[5], value)
return 1`;

/** Sweeps, and returns the live members as id, entry, id, entry… */
const MEMBERS = `${COMMON}
return sweep({})`;

type Script = (...args: (string | number)[]) => Promise<unknown>;

/** Options of {@linkcode RedisPresence}. */
export interface RedisPresenceOptions {
  prefix: string;
  /** The presence channel. */
  channel: string;
  /** How long a member outlives its process's last refresh, in ms. */
  ttl: number;
  /** This process's id, stored with its members. */
  process: string;
  /** Waits for the first connection, once. */
  ready(): Promise<void>;
  /** Resolves once this process receives presence events (so that it hears its own). */
  listening(): Promise<void>;
}

/** The backend's presence: `client` is its command connection (not the subscriber). */
export class RedisPresence implements PresenceStore {
  #client: Record<string, Script>;
  #options: RedisPresenceOptions;
  /** This process's members: topic → id → the entry after its expiry. */
  #own = new Map<string, Map<string, string>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #refreshing = false;

  /** Defines the scripts on `client`. */
  constructor(client: Redis, options: RedisPresenceOptions) {
    client.defineCommand("wsportPresenceRefresh", { numberOfKeys: 1, lua: REFRESH });
    client.defineCommand("wsportPresenceLeave", { numberOfKeys: 1, lua: LEAVE });
    client.defineCommand("wsportPresenceMembers", { numberOfKeys: 1, lua: MEMBERS });
    this.#client = client as unknown as Record<string, Script>;
    this.#options = options;
  }

  async join(topic: string, member: PresenceMember): Promise<void> {
    const entry = `,"process":${JSON.stringify(this.#options.process)},"info":${
      JSON.stringify(member.info ?? null)
    }}`;
    let members = this.#own.get(topic);
    if (!members) this.#own.set(topic, members = new Map());
    members.set(member.id, entry);
    this.#startTimer();
    await this.#options.ready();
    await this.#options.listening();
    await this.#client.wsportPresenceRefresh(
      ...this.#head(topic),
      "1",
      member.id,
      JSON.stringify(member.id),
      entry,
    );
  }

  async leave(topic: string, id: string): Promise<void> {
    const members = this.#own.get(topic);
    if (members?.delete(id) && members.size === 0) this.#own.delete(topic);
    if (this.#own.size === 0) this.#stopTimer();
    await this.#options.ready();
    await this.#options.listening();
    await this.#client.wsportPresenceLeave(...this.#head(topic), id, JSON.stringify(id));
  }

  async members(topic: string): Promise<PresenceMember[]> {
    await this.#options.ready();
    const flat = await this.#client.wsportPresenceMembers(...this.#head(topic)) as string[];
    const members: PresenceMember[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      members.push({ id: flat[i], info: JSON.parse(flat[i + 1]).info });
    }
    return members;
  }

  /** Removes this process's members (when Redis can be reached) and stops refreshing. */
  async close(): Promise<void> {
    this.#stopTimer();
    const own = [...this.#own].flatMap(([topic, members]) =>
      [...members.keys()].map((id) => ({ topic, id }))
    );
    this.#own.clear();
    await Promise.all(
      own.map(({ topic, id }) =>
        this.#client.wsportPresenceLeave(...this.#head(topic), id, JSON.stringify(id)).catch(() => {})
      ),
    );
  }

  /** KEYS and the first ARGV of every script. */
  #head(topic: string): [string, number, string, string] {
    const { prefix, ttl, channel } = this.#options;
    return [presenceKey(prefix, topic), ttl, channel, JSON.stringify(topic)];
  }

  #startTimer(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => this.#refresh(), this.#options.ttl / 3);
    // Members mean nothing without the connections that keep a process alive anyway.
    this.#timer.unref?.();
  }

  #stopTimer(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Rewrites every own member with a new expiry; failures wait for the next tick. */
  async #refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      await Promise.all([...this.#own].map(([topic, members]) => {
        const args = [...members].flatMap(([id, entry]) => [id, JSON.stringify(id), entry]);
        return this.#client.wsportPresenceRefresh(...this.#head(topic), "0", ...args).catch(() => {});
      }));
    } finally {
      this.#refreshing = false;
    }
  }
}
