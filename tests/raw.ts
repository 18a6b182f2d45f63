/**
 * Raw TCP helpers: hand-written handshakes and frames over `node:net`, to see
 * exactly what goes over the wire.
 */
import net from "node:net";
import { Buffer } from "node:buffer";

/** A valid handshake's headers, to which a test adds or overrides. */
export const UPGRADE_HEADERS: Record<string, string> = {
  "Upgrade": "websocket",
  "Connection": "Upgrade",
  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version": "13",
};

export interface RawResponse {
  status: number;
  headers: Headers;
  /** Bytes after the header block (frames, or an HTTP body). */
  rest: Buffer;
  socket: net.Socket;
}

/** How long a raw request waits for the response head. */
const RESPONSE_MS = 5000;

/**
 * Opens TCP, sends a request head, reads the response head. The socket stays
 * open. Rejects if the connection fails (the error keeps its `code`, e.g.
 * `ECONNREFUSED`), closes before a response head, or none comes within 5 s.
 */
export function rawRequest(
  port: number,
  headers: Record<string, string | undefined> = UPGRADE_HEADERS,
  { method = "GET", path = "/" } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    let buffer = Buffer.alloc(0);
    const lines = [`${method} ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`];
    for (const [name, value] of Object.entries(headers)) {
      if (value !== undefined) lines.push(`${name}: ${value}`);
    }
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.off("data", onData);
      socket.destroy();
      reject(error);
    };
    const timer = setTimeout(() => fail(new Error(`no response head within ${RESPONSE_MS} ms`)), RESPONSE_MS);
    const onError = (error: Error) => fail(error);
    const onClose = () => fail(new Error("the server closed the connection before a response head"));
    socket.on("connect", () => socket.write(lines.join("\r\n") + "\r\n\r\n"));
    socket.on("error", onError);
    socket.on("close", onClose);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      socket.on("error", () => {}); // the caller owns the socket now
      const [statusLine, ...headerLines] = buffer.subarray(0, end).toString("latin1").split("\r\n");
      const responseHeaders = new Headers();
      for (const line of headerLines) {
        const colon = line.indexOf(":");
        responseHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      resolve({
        status: Number(statusLine.split(" ")[1]),
        headers: responseHeaders,
        rest: buffer.subarray(end + 4),
        socket,
      });
    };
    socket.on("data", onData);
  });
}

/** Builds one client frame (masked unless `mask` is false). */
export function frame(
  opcode: number,
  payload: Uint8Array | string = new Uint8Array(0),
  { fin = true, mask = true, rsv = 0 } = {},
): Buffer {
  const data = typeof payload === "string" ? Buffer.from(payload) : Buffer.from(payload);
  const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
  const maskBit = mask ? 0x80 : 0;
  if (data.length < 126) head.push(maskBit | data.length);
  else if (data.length < 65536) head.push(maskBit | 126, data.length >> 8, data.length & 255);
  else {
    head.push(maskBit | 127);
    const length = Buffer.alloc(8);
    length.writeBigUInt64BE(BigInt(data.length));
    head.push(...length);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(data.map((byte, i) => byte ^ key[i % 4]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** A close frame's payload: code and reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const reasonBytes = Buffer.from(reason);
  const payload = Buffer.alloc(2 + reasonBytes.length);
  payload.writeUInt16BE(code);
  reasonBytes.copy(payload, 2);
  return payload;
}

/** Completes a WebSocket handshake over raw TCP and returns the open socket (which never answers pings or closes). */
export async function rawWebSocket(port: number, path = "/"): Promise<net.Socket> {
  const response = await rawRequest(port, UPGRADE_HEADERS, { path });
  if (response.status !== 101) throw new Error(`expected 101, got ${response.status}`);
  return response.socket;
}

/** A frame as the server sent it. */
export interface ServerFrame {
  fin: boolean;
  /** RSV1..RSV3 as a 3-bit number. */
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

/** Splits the complete frames off the front of `buffer`; returns them and the incomplete rest. */
export function parseFrames(buffer: Buffer): { frames: ServerFrame[]; rest: Buffer } {
  const frames: ServerFrame[] = [];
  let offset = 0;
  while (buffer.length - offset >= 2) {
    const first = buffer[offset];
    const second = buffer[offset + 1];
    let length = second & 0x7f;
    let start = offset + 2;
    if (length === 126) {
      if (buffer.length < start + 2) break;
      length = buffer.readUInt16BE(start);
      start += 2;
    } else if (length === 127) {
      if (buffer.length < start + 8) break;
      length = Number(buffer.readBigUInt64BE(start));
      start += 8;
    }
    const masked = (second & 0x80) !== 0;
    const key = masked ? buffer.subarray(start, start + 4) : undefined;
    if (masked) start += 4;
    if (buffer.length < start + length) break;
    const payload = Buffer.from(buffer.subarray(start, start + length));
    if (key) { for (let i = 0; i < payload.length; i++) payload[i] ^= key[i % 4]; }
    frames.push({ fin: (first & 0x80) !== 0, rsv: (first >> 4) & 7, opcode: first & 0x0f, masked, payload });
    offset = start + length;
  }
  return { frames, rest: buffer.subarray(offset) };
}

/** What a raw peer saw by the time the server let go of TCP. */
export interface PeerEnd {
  /** Every frame the server sent, in order. */
  frames: ServerFrame[];
  /** The code of the server's close frame: 1005 for an empty one, `undefined` when none came. */
  closeCode: number | undefined;
  /** The close frame's reason. */
  closeReason: string;
  /** How TCP ended: a FIN ("end"), a reset, or not within the wait ("open"). */
  tcp: "end" | "reset" | "open";
}

/**
 * A hand-driven WebSocket client over raw TCP: it completes the handshake,
 * then writes whatever frames a test builds and records every frame the
 * server sends. Like a conforming client it answers the server's close frame
 * (turn `answerClose` off to play a peer that never does); it never answers pings.
 */
export class RawPeer {
  readonly socket: net.Socket;
  /** The 101 response's headers. */
  readonly headers: Headers;
  /** Whether to echo the server's close frame, as RFC 6455 §5.5.1 asks. */
  answerClose = true;
  #buffer: Buffer;
  #frames: ServerFrame[] = [];
  #read = 0;
  #wake: (() => void) | undefined;
  #tcp: "end" | "reset" | "open" = "open";
  #ended = Promise.withResolvers<void>();

  private constructor(socket: net.Socket, headers: Headers, rest: Buffer) {
    this.socket = socket;
    this.headers = headers;
    this.#buffer = rest;
    socket.on("data", (chunk: Buffer) => this.#receive(chunk));
    socket.on("end", () => this.#end("end"));
    socket.on(
      "error",
      (error: Error & { code?: string }) => this.#end(error.code === "ECONNRESET" ? "reset" : "end"),
    );
    socket.on("close", () => this.#end("end"));
    this.#receive(Buffer.alloc(0));
  }

  /** Opens TCP and completes a handshake (`headers` as in {@linkcode rawRequest}); rejects unless 101. */
  static open(port: number, headers: Record<string, string | undefined> = UPGRADE_HEADERS): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, "127.0.0.1");
      const lines = [`GET / HTTP/1.1`, `Host: 127.0.0.1:${port}`];
      for (const [name, value] of Object.entries(headers)) {
        if (value !== undefined) lines.push(`${name}: ${value}`);
      }
      let buffer = Buffer.alloc(0);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.off("data", onData);
        socket.destroy();
        reject(error);
      };
      const timer = setTimeout(
        () => fail(new Error(`no response head within ${RESPONSE_MS} ms`)),
        RESPONSE_MS,
      );
      const onError = (error: Error) => fail(error);
      const onClose = () => fail(new Error("the server closed the connection before a response head"));
      const onData = (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        const end = buffer.indexOf("\r\n\r\n");
        if (end < 0) return;
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", onError);
        socket.off("close", onClose);
        const [statusLine, ...headerLines] = buffer.subarray(0, end).toString("latin1").split("\r\n");
        if (!statusLine.startsWith("HTTP/1.1 101")) {
          socket.destroy();
          return reject(new Error(`expected 101, got ${statusLine}`));
        }
        const responseHeaders = new Headers();
        for (const line of headerLines) {
          const colon = line.indexOf(":");
          responseHeaders.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
        }
        // Attached in the same tick as the handshake's last chunk: no frame can be missed.
        resolve(new RawPeer(socket, responseHeaders, buffer.subarray(end + 4)));
      };
      socket.on("connect", () => socket.write(lines.join("\r\n") + "\r\n\r\n"));
      socket.on("error", onError);
      socket.on("close", onClose);
      socket.on("data", onData);
    });
  }

  #receive(chunk: Buffer): void {
    const { frames, rest } = parseFrames(Buffer.concat([this.#buffer, chunk]));
    this.#buffer = rest;
    for (const received of frames) {
      this.#frames.push(received);
      if (received.opcode === 8 && this.answerClose) this.write(frame(8, received.payload));
    }
    if (frames.length > 0) this.#notify();
  }

  #end(how: "end" | "reset"): void {
    if (this.#tcp === "open") this.#tcp = how;
    this.#ended.resolve();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** The server's close frame as received so far (`undefined` before it comes): code and reason. */
  get closeFrame(): { code: number; reason: string } | undefined {
    const close = this.#frames.find((received) => received.opcode === 8);
    if (!close) return undefined;
    return {
      code: close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005,
      reason: close.payload.subarray(2).toString(),
    };
  }

  /** Writes bytes (frames from {@linkcode frame}) unless TCP has ended. */
  write(data: Uint8Array): void {
    if (!this.socket.destroyed && this.#tcp === "open") this.socket.write(data);
  }

  /** The next frame from the server, `undefined` if TCP ends first; rejects after `ms`. */
  async next(ms = 5000): Promise<ServerFrame | undefined> {
    const deadline = Date.now() + ms;
    while (this.#read >= this.#frames.length) {
      if (this.#tcp !== "open") return undefined;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame within ${ms} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        timer = setTimeout(resolve, left);
      });
      clearTimeout(timer);
    }
    return this.#frames[this.#read++];
  }

  /** Waits up to `ms` for the server to let go of TCP, and reports every frame it sent. */
  async end(ms = 5000): Promise<PeerEnd> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      this.#ended.promise,
      new Promise<void>((resolve) => timer = setTimeout(resolve, ms)),
    ]);
    clearTimeout(timer);
    const close = this.#frames.find((received) => received.opcode === 8);
    return {
      frames: [...this.#frames],
      closeCode: close ? (close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005) : undefined,
      closeReason: close ? close.payload.subarray(2).toString() : "",
      tcp: this.#tcp,
    };
  }

  /** Drops TCP with a reset (RST), as a crashed peer would. */
  reset(): void {
    this.#tcp = "reset";
    this.socket.resetAndDestroy();
    this.#ended.resolve();
  }

  /** Closes TCP without a WebSocket close. */
  destroy(): void {
    this.socket.destroy();
  }
}
