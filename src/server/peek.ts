import type { Socket } from 'node:net';

/** What `look` makes of the bytes so far: undefined to wait for more, or its answer and how many bytes it took. */
export type Look<T> = { value: T; used: number } | undefined;

export type Peeked<T> = { kind: 'answer'; value: T } | { kind: 'timeout' } | { kind: 'end' } | { kind: 'close' };

/**
 * Reads the first bytes of an accepted, paused socket before the pipes start (a PROXY header, a
 * ClientHello): `look` sees everything read so far until it answers. The bytes it did not use go
 * back into the socket for the pipes, as do all of them on a timeout. Never rejects.
 */
export function peek<T>(socket: Socket, look: (buf: Buffer) => Look<T>, timeoutMs: number): Promise<Peeked<T>> {
  return new Promise((resolve) => {
    let buf: Buffer | undefined;
    const finish = (result: Peeked<T>, putBack?: Buffer): void => {
      clearTimeout(timer);
      socket.off('readable', onReadable);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      // Never after 'end' or 'close': a stream refuses an unshift once it has ended.
      if (putBack && putBack.length > 0) socket.unshift(putBack);
      resolve(result);
    };
    const onReadable = (): void => {
      let chunk: Buffer | null;
      while ((chunk = socket.read() as Buffer | null) !== null) {
        buf = buf ? Buffer.concat([buf, chunk]) : chunk;
        const answer = look(buf);
        if (answer) return finish({ kind: 'answer', value: answer.value }, buf.subarray(answer.used));
      }
    };
    const onEnd = (): void => finish({ kind: 'end' });
    const onClose = (): void => finish({ kind: 'close' });
    const timer = setTimeout(() => finish({ kind: 'timeout' }, buf), timeoutMs);
    socket.on('readable', onReadable);
    socket.on('end', onEnd);
    socket.on('close', onClose);
  });
}
