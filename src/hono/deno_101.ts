/**
 * Keeping Deno's 101: once Deno has upgraded a request, the app must answer
 * with that 101, whatever later middleware does.
 *
 * @module
 */
import type { HonoContext } from "./types.ts";

/**
 * Once Deno has upgraded a request, the response must be a 101: for any
 * other status Deno logs "Upgrade response was not returned from callback"
 * and closes its whole listener. A middleware that fails after `await next()`
 * makes Hono answer 500 instead. This keeps the 101 on this request's
 * context (the socket is open whatever the app answers; Bun likewise ignores
 * what follows an upgrade) and reports the replacement.
 */
export function keepUpgradeResponse(c: HonoContext, report: (error: Error) => void): void {
  let owner: object | null = c;
  let accessor: PropertyDescriptor | undefined;
  while (owner && !accessor) {
    accessor = Object.getOwnPropertyDescriptor(owner, "res");
    owner = Object.getPrototypeOf(owner);
  }
  if (!accessor?.get || !accessor.set) return;
  const { get, set } = accessor;
  Object.defineProperty(c, "res", {
    configurable: true,
    get() {
      return get.call(this);
    },
    set(response: Response | undefined) {
      if (response && response.status !== 101) {
        report(
          new Error(
            `wsport/hono: a middleware replaced the 101 of an upgraded request with ${response.status}; ` +
              "the WebSocket is open, so the 101 stands",
          ),
        );
        return;
      }
      set.call(this, response);
    },
  });
}
