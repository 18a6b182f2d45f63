/**
 * The turn clock: one process-wide count of event-loop turns, shared by every
 * connection, that decides who is slow and when a sender must yield.
 *
 * A turn begins when something asks for the clock and ends when one timer,
 * `setTimeout(0)`, fires; the timer is only scheduled while the clock is in
 * use. Runtimes write to sockets between turns (Deno writes only then), so:
 *
 * - what a connection had buffered when it was first sent to in a turn is
 *   what the turns before did not drain: the measure of a slow peer that
 *   does not depend on how much this turn's own burst has queued;
 * - a sending loop whose `send()` never has to wait (Bun writes at once to a
 *   reader that keeps up) would hold the event loop forever; once the turn has
 *   lasted {@linkcode TURN_BUDGET_MS}, `send()` resolves only when the turn
 *   ends, so other connections get the loop between.
 *
 * It knows no runtime: it needs `setTimeout` and `performance.now`.
 *
 * @module
 */

/** How long a turn may run before `send()` and `publish()` yield to the event loop, in milliseconds. */
export const TURN_BUDGET_MS = 10;

let turn = 0;
let timer: ReturnType<typeof setTimeout> | undefined;
/** When the current turn began (its timer was scheduled). */
let startedAt = 0;
/** What senders that yield wait for: one promise for all of them, resolved by the timer. */
let ended: PromiseWithResolvers<void> | undefined;

function endTurn(): void {
  timer = undefined;
  turn++;
  const waiting = ended;
  ended = undefined;
  waiting?.resolve();
}

function startTurn(): void {
  timer = setTimeout(endTurn, 0);
  startedAt = performance.now();
}

/** The number of the current turn (it starts the clock if no turn is running). */
export function currentTurn(): number {
  if (timer === undefined) startTurn();
  return turn;
}

/**
 * A promise that resolves when the current turn ends, if it has run for
 * longer than {@linkcode TURN_BUDGET_MS}; `undefined` otherwise (the caller
 * goes on at once).
 */
export function yieldIfTurnIsLong(): Promise<void> | undefined {
  if (timer === undefined) {
    startTurn();
    return undefined;
  }
  if (performance.now() - startedAt <= TURN_BUDGET_MS) return undefined;
  if (!ended) {
    ended = Promise.withResolvers<void>();
    // The turn's timer is overdue by now, and Deno runs a timer that is due
    // (or a setImmediate) without polling the network first: a loop yielding
    // that way left other sockets unread for 0.4–1.5 s. A timer scheduled now
    // makes the runtime wait for it (about 1 ms), serving sockets meanwhile.
    clearTimeout(timer);
    timer = setTimeout(endTurn, 0);
  }
  return ended.promise;
}
