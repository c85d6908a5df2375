/**
 * The Flow contract: what the scheduler (scheduler.ts) asks of one direction of one stream. Three
 * kinds plug into the same scheduler:
 *
 * - the socket flow (socket-flow.ts): a queue of the reads of one socket, written to the other;
 * - the library's ShapingStream (stream.ts): a queue of a Transform's writes, pushed to its readable side;
 * - a native flow (a data plane outside JS): a pipe is its queue; sendable() reads a slot of a
 *   shared typed array, pass(n) adds n to the flow's grant and marks it dirty, and its batch
 *   commits every dirty grant in one call at the end of the serve pass.
 *
 * The other half of the contract is the owner's: a flow hangs at a node, `new SchedNode(label,
 * flow)`, attached with `scheduler.attach(node, parent)`. Whenever sendable() may have gone from 0
 * to more (bytes arrived, the destination drained), the owner calls `scheduler.wake(node)`: the
 * scheduler never polls. Pausing and resuming the source (a socket's reads, a Transform's write
 * callback, a pipe's reader) is the owner's business too: the scheduler only ever sees sendable()
 * and pass(). When the flow is done, `scheduler.detach(node)`.
 */
export interface Flow {
  /**
   * Bytes waiting that may go now: 0 when nothing waits or the destination is full. Asked before
   * every grant, so it must be cheap (a field or two). A batched flow counts bytes already passed
   * but not yet committed as gone.
   */
  sendable(): number;
  /**
   * Pass `n` bytes on, in order and unchanged: a whole number, 0 < n <= sendable(); the tokens are
   * already taken. May run the owner's code (a socket write, a stream push) and so re-enter the
   * scheduler (wake, attach, detach, setLimits): it defers that work to the end of its pass.
   */
  pass(n: number): void;
  /**
   * Grants this flow would rather get in one go (bytes), beyond the default of half its bucket: a
   * native direction, for which each grant is a system call and the bytes wait in a kernel pipe,
   * asks for up to its whole bucket (grants.ts flowNeed). Such a flow is woken in windows shared
   * with others (grants.ts EARLY_FRACTION), and after a full grant it waits parked for the next one
   * (its wakes meanwhile cost nothing). Undefined: the default.
   */
  readonly grantSize?: number | undefined;
  /**
   * A flow whose pass() only records its grants (a native flow) names the batch that acts on them.
   * Flows without one act in pass() and cost the scheduler nothing here.
   */
  readonly batch?: FlowBatch | undefined;
}

/**
 * Grants recorded by any number of flows, acted on together. The scheduler calls commit() once at
 * the end of every serve pass in which it passed bytes to one of its flows (a timer's pass, a
 * wake's, a rate change's), before it sleeps. commit() may wake flows; the scheduler then serves
 * again and commits again.
 */
export interface FlowBatch {
  commit(): void;
}
