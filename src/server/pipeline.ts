/**
 * The data path of a connection once both sockets exist: each direction is a shaping stage (a
 * flow of the shaper) or, unshaped, a pump (src/server/pump.ts); the first backend byte and the
 * analyser (Foo) hook in where the bytes pass, never changing them.
 */
import type { Socket } from 'node:net';
import type { OwnedRead } from '../shaping/socket-flow.js';
import { pump } from './pump.js';
import type { Analyzer, Stages } from './stages.js';

export interface Hooks {
  /** called once, at the backend's first byte */
  firstByte: (() => void) | null;
  /** called once, at the client's first byte */
  upFirstByte: (() => void) | null;
  analyzer: Analyzer | null;
}

/** Wire client -> backend (up) and backend -> client (down); `read` is the backend's owned read path into the down stage. */
export function wire(client: Socket, backend: Socket, stages: Stages | undefined, read: OwnedRead | undefined, hooks: Hooks): void {
  const up = stages?.up;
  const down = stages?.down;
  if (up) up.connect(client, backend);
  else pump(client, backend);
  if (down) down.connect(backend, client, read);
  else pump(backend, client);
  if (hooks.firstByte) {
    if (down) down.onFirstByte = hooks.firstByte;
    else backend.once('data', hooks.firstByte);
  }
  if (hooks.upFirstByte) {
    if (up) up.onFirstByte = hooks.upFirstByte;
    else client.once('data', hooks.upFirstByte);
  }
  const analyzer = hooks.analyzer;
  if (analyzer) {
    const fromClient = (chunk: Buffer) => analyzer.client(chunk);
    const fromServer = (chunk: Buffer) => analyzer.server(chunk);
    if (up) up.observe = fromClient;
    else client.on('data', fromClient);
    if (down) down.observe = fromServer;
    else backend.on('data', fromServer);
  }
}
