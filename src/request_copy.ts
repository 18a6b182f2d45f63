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

/**
 * The upgrade request's URL, then each header's name and value, one per line
 * (neither can hold a line break): one flat string, a fraction of the size of
 * the objects it encodes.
 */
export type RequestCopy = string & { readonly __brand: "RequestCopy" };

/** Copies `request`; call it before the runtime upgrades (and, on Deno, frees) it. */
export function copyRequest(request: Request): RequestCopy {
  const lines = [request.url];
  for (const [name, value] of request.headers) lines.push(name, value);
  return lines.join("\n") as RequestCopy;
}

/** Makes the request again from its copy (a GET, as every upgrade request is). */
export function requestFromCopy(copy: RequestCopy): Request {
  const [url, ...lines] = copy.split("\n");
  const headers = new Headers();
  for (let i = 0; i < lines.length; i += 2) headers.append(lines[i], lines[i + 1]);
  return new Request(url, { headers });
}
