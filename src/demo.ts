import net from 'node:net';
import type { ProxyConfig } from './config/types.js';
import type { Logger } from './log.js';

/**
 * Built-in demo backends for `npm start`: every loopback target of the config
 * gets a small server, so the proxy has something to talk to on a machine with
 * nothing else running. What each serves follows the app:
 *   protocol "foo"          answers each "REQ n ..." line with "ACK n ..."
 *   name contains download  streams bytes until the client closes
 *   name contains upload    reads and discards everything
 *   anything else           echoes what it receives
 */
export type DemoKind = 'echo' | 'download' | 'upload' | 'foo';

const CHUNK = Buffer.alloc(64 * 1024, 'shaper-proxy demo data\n');

export function demoKindFor(app: { name: string; protocol: string }): DemoKind {
  if (app.protocol === 'foo') return 'foo';
  if (/download/i.test(app.name)) return 'download';
  if (/upload/i.test(app.name)) return 'upload';
  return 'echo';
}

export function createDemoServer(kind: DemoKind): net.Server {
  return net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => socket.destroy());
    switch (kind) {
      case 'echo':
        socket.pipe(socket);
        break;
      case 'upload':
        socket.resume();
        socket.on('end', () => socket.end());
        break;
      case 'download': {
        const pump = () => {
          while (!socket.destroyed && socket.write(CHUNK));
        };
        socket.on('drain', pump);
        socket.on('end', () => socket.end());
        socket.resume();
        pump();
        break;
      }
      case 'foo': {
        let buf = '';
        socket.setEncoding('utf8');
        socket.on('data', (d: string) => {
          buf += d;
          let i;
          while ((i = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, i);
            buf = buf.slice(i + 1);
            const m = /^REQ (\d+)(?: (.*))?$/.exec(line);
            socket.write(m ? `ACK ${m[1]} ${m[2] ?? ''}`.trimEnd() + '\n' : `NAK 0 bad request\n`);
          }
        });
        socket.on('end', () => socket.end());
        break;
      }
    }
  });
}

const LOOPBACK = /^(127\.|localhost$|::1$)/;

/** Start a demo server on every loopback target; returns a stop function. */
export async function startDemoBackends(config: ProxyConfig, log: Logger): Promise<() => Promise<void>> {
  const servers: net.Server[] = [];
  const seen = new Set<string>();
  for (const app of config.apps) {
    const kind = demoKindFor(app);
    for (const t of app.targets) {
      if (!LOOPBACK.test(t.host) || seen.has(t.address)) continue;
      seen.add(t.address);
      const server = createDemoServer(kind);
      await new Promise<void>((resolve) => {
        server.once('error', (err: NodeJS.ErrnoException) => {
          log.warn({ target: t.address, code: err.code }, 'demo backend could not listen (something else is there?)');
          resolve();
        });
        server.listen(t.port, t.host, () => {
          log.info({ target: t.address, kind, app: app.name }, 'demo backend listening');
          servers.push(server);
          resolve();
        });
      });
    }
  }
  return async () => {
    for (const s of servers) {
      s.close();
    }
  };
}

/** What to print so a person can try the demo at once. */
export function demoHints(config: ProxyConfig, adminPort: number | undefined): string {
  const lines = ['', 'shaper-proxy demo is running. Try:'];
  for (const app of config.apps) {
    const port = app.ports[0];
    const host = app.bind === '0.0.0.0' || app.bind === '::' ? '127.0.0.1' : app.bind;
    switch (demoKindFor(app)) {
      case 'echo':
        lines.push(`  echo:      nc ${host} ${port}              (type a line, it comes back)`);
        break;
      case 'download': {
        const tier = config.defaultTier ? `tier ${config.defaultTier}` : 'unshaped';
        lines.push(`  download:  nc ${host} ${port} | pv > /dev/null    (${tier})`);
        for (const c of config.customers) {
          const src = c.match.sources?.find((s) => /^127\.\d+\.\d+\.\d+(\/32)?$/.test(s))?.replace('/32', '');
          if (src && (!c.match.apps || c.match.apps.includes(app.name))) {
            lines.push(`             nc -s ${src} ${host} ${port} | pv > /dev/null    (customer ${c.id}, tier ${c.tier})`);
          }
        }
        break;
      }
      case 'upload':
        lines.push(`  upload:    head -c 50M /dev/zero | nc -N ${host} ${port}`);
        break;
      case 'foo':
        lines.push(`  foo:       printf 'REQ 1 Hey\\n' | nc -q1 ${host} ${port}`);
        break;
    }
  }
  if (adminPort) {
    lines.push(`  dashboard: http://${config.admin!.host}:${adminPort}/`);
    lines.push(`  status:    curl -s http://${config.admin!.host}:${adminPort}/stats     (or /status, /metrics)`);
  }
  lines.push('  Stop with Ctrl+C (graceful drain).', '');
  return lines.join('\n');
}
