/**
 * The layout of the memory the engine shares with JavaScript, mirroring src/native/engine.h
 * (test/native/layout.test.ts checks the two agree). Every field has one writer: the engine or
 * JavaScript, never both.
 */

/** doubles per relay slot; direction d's fields start at d * S_DIR */
export const SLOT = 16;
export const S_DIR = 6;
/** engine: bytes waiting (prepended bytes not yet written + bytes in the pipe) */
export const S_QUEUED = 0;
/** engine: bytes written to the destination, ever */
export const S_MOVED = 1;
/** JS: bytes granted, ever (shaped directions) */
export const S_GRANTED = 2;
/** engine: 1 while the destination refuses more */
export const S_DSTFULL = 3;
/** JS sets 1 when it put the direction on the dirty list; the engine clears it */
export const S_DIRTY = 4;
/** engine: F_* bits */
export const S_FLAGS = 5;
/** engine: errno of the failure that ended the relay */
export const S_ERRNO = 12;
/** engine: the socket that failed: 0 client, 1 backend, 2 the engine itself, -1 none */
export const S_ERRSIDE = 13;
/** engine: 1 while the relay holds its sockets */
export const S_OPEN = 14;

export const F_SHAPED = 1;
export const F_EOF = 2;
export const F_FIN = 4;

/** Fields of the header slot (the slot after the last relay). */
export const H_RELAYS = 0;
export const H_SOCKETS = 1;
export const H_PIPES = 2;
export const H_POOLED = 3;
/** JS: entries on the dirty list (the engine resets it when it applied them) */
export const H_DIRTY = 4;
export const H_ALLOCS = 5;
export const H_PIPE_SIZE = 6;
export const H_SLOTS = 7;
export const H_SHAPED_PIPE_SIZE = 8;

/** Event bits, one mask per relay per loop iteration. */
export const E_DATA0 = 1;
export const E_DATA1 = 2;
export const E_FIN0 = 4;
export const E_FIN1 = 8;
export const E_ERROR = 16;
export const E_DONE = 32;
export const E_FIRST0 = 64;
export const E_FIRST1 = 128;
