/**
 * What `ws.request` is made from once the upgrade is done.
 *
 * The upgrade `Request` is not kept for the connection's life: Deno frees it
 * once upgraded (its headers then throw "Request closed"), and on Bun it holds
 * several times the memory of its text. Its URL and headers are kept as one
 * string instead, and a `Request` is made from it only if someone asks.
 *
 * @module
 */

/** The upgrade request's URL and headers, kept as strings until a `Request` is wanted. */
export class RequestCopy {
  /**
   * The URL, then each header's name and value, one per line: neither can hold
   * a line break. One flat string costs a fraction of the objects it encodes.
   */
  #text: string;

  /** Copies `request`; call it before the runtime upgrades (and, on Deno, frees) it. */
  constructor(request: Request) {
    const lines = [request.url];
    for (const [name, value] of request.headers) lines.push(name, value);
    this.#text = lines.join("\n");
  }

  /** Makes the request again (a GET, as every upgrade request is). */
  toRequest(): Request {
    const [url, ...lines] = this.#text.split("\n");
    const headers = new Headers();
    for (let i = 0; i < lines.length; i += 2) headers.append(lines[i], lines[i + 1]);
    return new Request(url, { headers });
  }
}
