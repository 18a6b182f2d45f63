/**
 * Helpers of the history tests: a feed server that answers the follower's
 * requests and publishes what clients ask it to, and a raw client that
 * speaks the follower's wire format (so that the server's guarantees are
 * checked without the client helper's help).
 */
import assert from "node:assert/strict";
import { answerTopicRequest, type Connection, type ServeOptions, type StreamPosition } from "../mod.ts";
import { startServer, TestClient, waitFor } from "./helpers.ts";

/** A frame of the follower protocol, parsed. */
export interface Frame {
  topic: string;
  data?: string;
  binary?: boolean;
  epoch?: string;
  offset?: number;
  subscribed?: { recovered: boolean; reason?: string; position?: StreamPosition };
  presence?: { type: "join" | "leave"; member: { id: string; info: unknown } };
  refused?: string;
}

/**
 * A server whose clients follow topics with `{"subscribe":…}`, publish with
 * `pub TOPIC TEXT`, join a topic's presence with `join TOPIC NAME` and leave
 * it with `leave TOPIC`.
 */
export function feedServer(options: ServeOptions = {}): ReturnType<typeof startServer> {
  return startServer(async (ws: Connection) => {
    for await (const message of ws) {
      if (await answerTopicRequest(ws, message, { allow: (topic) => !topic.startsWith("secret") })) continue;
      if (typeof message !== "string") continue;
      const [, verb, topic, text] = /^(\w+) (\S+) ?(.*)$/s.exec(message) ?? [];
      if (verb === "pub") await ws.publish(topic, text);
      if (verb === "join") await ws.join(topic, { name: text });
      if (verb === "leave") await ws.leave(topic);
    }
  }, options);
}

/** A raw client of the follower protocol: it records every frame. */
export class FeedClient {
  readonly client: TestClient;
  readonly frames: Frame[] = [];

  private constructor(client: TestClient) {
    this.client = client;
    client.socket.addEventListener("message", (event) => this.frames.push(JSON.parse(event.data as string)));
  }

  static async open(url: string): Promise<FeedClient> {
    return new FeedClient(await TestClient.open(url));
  }

  /** Sends a subscribe request and resolves with the server's answer. */
  async subscribe(topic: string, since?: StreamPosition, presence?: boolean): Promise<Frame["subscribed"]> {
    const before = this.frames.length;
    this.client.send(JSON.stringify({ subscribe: topic, since, presence }));
    await waitFor(
      () => this.frames.slice(before).some((f) => f.topic === topic && (f.subscribed || f.refused)),
      5000,
      `the answer to subscribe ${topic}`,
    );
    const answer = this.frames.slice(before).find((f) => f.topic === topic && (f.subscribed || f.refused))!;
    assert.equal(answer.refused, undefined, `subscribe ${topic} refused`);
    return answer.subscribed;
  }

  /** The messages (not answers, not presence) of a topic received so far. */
  messages(topic: string): Frame[] {
    return this.frames.filter((f) => f.topic === topic && f.data !== undefined);
  }

  /** The last position received for a topic. */
  lastPosition(topic: string): StreamPosition {
    const last = this.messages(topic).at(-1)!;
    return { epoch: last.epoch!, offset: last.offset! };
  }

  async close(): Promise<void> {
    this.client.close();
    await this.client.closed;
  }
}

/** The offsets `from`..`to`. */
export function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}
