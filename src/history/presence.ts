/**
 * Presence kept in this process: who joined which topic, with what info.
 * The server's default when its backend keeps no presence of its own (and
 * there is no backend: with a backend that has none, presence is refused,
 * since members of the other processes would be missing).
 *
 * @module
 */
import type { PresenceEvent, PresenceMember, PresenceStore } from "./types.ts";

/** A {@linkcode PresenceStore} in memory; each join and leave is handed to `onEvent` at once. */
export class MemoryPresence implements PresenceStore {
  #topics = new Map<string, Map<string, unknown>>();
  #onEvent: (topic: string, event: PresenceEvent) => void;

  /** Creates an empty store that reports its changes to `onEvent`. */
  constructor(onEvent: (topic: string, event: PresenceEvent) => void) {
    this.#onEvent = onEvent;
  }

  /** Adds (or updates) a member; a join event follows. */
  join(topic: string, member: PresenceMember): Promise<void> {
    let members = this.#topics.get(topic);
    if (!members) this.#topics.set(topic, members = new Map());
    members.set(member.id, member.info);
    this.#onEvent(topic, { type: "join", member: { id: member.id, info: member.info } });
    return Promise.resolve();
  }

  /** Removes a member; a leave event follows if it was there. */
  leave(topic: string, id: string): Promise<void> {
    const members = this.#topics.get(topic);
    if (!members?.has(id)) return Promise.resolve();
    const info = members.get(id);
    members.delete(id);
    if (members.size === 0) this.#topics.delete(topic);
    this.#onEvent(topic, { type: "leave", member: { id, info } });
    return Promise.resolve();
  }

  /** The topic's members, in the order they joined. */
  members(topic: string): Promise<PresenceMember[]> {
    const members = this.#topics.get(topic);
    return Promise.resolve(members ? Array.from(members, ([id, info]) => ({ id, info })) : []);
  }
}
