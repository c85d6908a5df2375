/** The types a connection's data path is made of: the stages between the sockets, analysers, close reasons. */
import type { Socket } from 'node:net';
import type { OwnedRead } from '../shaping/socket-flow.js';

export type Direction = 'up' | 'down';

/** A stage between one socket's reads and the other socket's writes (shaping plugs in here). */
export interface Stage {
  /**
   * Take over reading `src` and writing `dst`; with `read`, src already reads into the stage. At
   * src's 'end' the stage runs probeReset(src) (a reset may hide behind that FIN).
   */
  connect(src: Socket, dst: Socket, read?: OwnedRead): void;
  destroy(): void;
  /** Sees every chunk from the source (analysers); never keeps or changes it. */
  observe: ((chunk: Buffer) => void) | null;
  /** Called once, at the first byte from the source. */
  onFirstByte: (() => void) | null;
  /** ms bytes waited in the stage, in total */
  readonly waitedMs: number;
}

/** Watches the bytes of a connection without touching them (the Foo analyser). */
export interface Analyzer {
  client(chunk: Buffer): void;
  server(chunk: Buffer): void;
}

/**
 * The stages a connection's data passes through: `up` between client and
 * backend, `down` between backend and client. Absent stages cost nothing: the
 * sockets are piped directly.
 */
export interface Stages {
  up?: Stage;
  down?: Stage;
}

export type CloseReason =
  | 'done'
  /** the client closed its end while the backend was still sending (an ordinary hang-up, not an error) */
  | 'client_closed'
  /** the backend closed its end while the client was still sending (an ordinary hang-up, not an error) */
  | 'backend_closed'
  /** a reset (ECONNRESET without a FIN first) or another failure on the client socket */
  | 'client_error'
  | 'backend_error'
  | 'stage_error'
  | 'idle_timeout'
  | 'no_target'
  /** no target accepted within `wake.timeout` after the app's wake hook ran */
  | 'wake_timeout'
  | 'client_gone'
  | 'shutdown'
  | 'rejected'
  /** refused, or closed, because its customer is over a quota that has no `then` tier */
  | 'quota_exceeded'
  | 'proxy_protocol'
  /** the client address of the PROXY header is not allowed on the app (apps[].allow / deny) */
  | 'denied'
  /** closed through the admin API (DELETE /connections/:id) */
  | 'killed'
  /** the dial to the backend found no file descriptor left (EMFILE / ENFILE) */
  | 'resource_exhausted'
  | 'tls_handshake';
