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

/** Opens TCP, sends a request head, reads the response head. The socket stays open. */
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
    socket.on("connect", () => socket.write(lines.join("\r\n") + "\r\n\r\n"));
    socket.on("error", reject);
    const onData = (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onData);
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
