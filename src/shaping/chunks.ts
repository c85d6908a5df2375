/**
 * The bytes waiting in a flow (socket-flow.ts, stream.ts): the chunks as they came, never copied,
 * and how far the first one is already passed on.
 */
export class ChunkQueue {
  #chunks: Buffer[] = [];
  #head = 0;
  #bytes = 0;

  /** Bytes waiting. */
  get bytes(): number {
    return this.#bytes;
  }

  push(chunk: Buffer): void {
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
  }

  /** Take the next piece off the front: `max` bytes or the rest of the first chunk, whichever is less (max <= bytes). */
  next(max: number): Buffer {
    const chunk = this.#chunks[0]!;
    const head = this.#head;
    const avail = chunk.length - head;
    let piece: Buffer;
    if (avail <= max) {
      piece = head === 0 ? chunk : chunk.subarray(head);
      this.#chunks.shift();
      this.#head = 0;
    } else {
      piece = chunk.subarray(head, head + max);
      this.#head = head + max;
    }
    this.#bytes -= piece.length;
    return piece;
  }

  clear(): void {
    this.#chunks.length = 0;
    this.#head = 0;
    this.#bytes = 0;
  }
}
