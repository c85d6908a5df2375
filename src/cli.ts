#!/usr/bin/env -S node --max-semi-space-size=1 --v8-pool-size=1 --heap-growing-percent=25
// The bin runs node with a small young generation (1 MB semi-spaces instead of
// up to 16 MB): a busy proxy makes many short-lived objects (buffer views,
// write requests) that a scavenge collects cheaply either way, and the smaller
// young generation keeps ~20 MB off the resident size (shaping bench, case 1).
// One V8 worker thread instead of four (the extra ones mostly held malloc arenas;
// with 1 MB semi-spaces: 1,000 native connections peak 79-81 -> 75-76 MB).
// And the old generation grows by 25 % over what is live before a full GC (V8's
// own factor goes up to 4x): a heap of ~10 MB live no longer swells by 20 MB of
// garbage as connections come and go (bench sources: 19.9 -> 5.5 MB).
import { parseArgs } from 'node:util';
import { loadConfigFile } from './config/load.js';
import { stateDirReady } from './config/state-dir.js';
import type { ProxyConfig } from './config/types.js';
import { isProxyError } from './errors.js';
import { createLogger, LOG_LEVEL_HELP, logLevel as parseLogLevel, type Logger } from './log.js';
import { VERSION } from './version.js';
import { FileWatch, watchConfigFile } from './server/reload.js';
import { tlsFiles } from './config/tls.js';
import { demoHints, startDemoBackends } from './demo.js';
import { startProfile } from './observe/profile.js';
import { hasControllingTerminal, removePidFile, startedBySystemd, thisProgram, upgradeChild, upgrades, writePidFile, type UpgradeChild } from './upgrade.js';

const USAGE = `Usage: shaper-proxy --config FILE [options]
       shaper-proxy ctl COMMAND [options]   (the admin API for operators; see shaper-proxy ctl --help)
       shaper-proxy schema                  (print the JSON Schema of the config, for editors)

Options:
  -c, --config FILE      config file (.json, .jsonc, .yaml, .yml, .toml)
  -l, --log-level LEVEL  fatal|error|warn|info|debug|trace|silent, or 0-7 as in seed 000: 0 debug, 1 info,
                         2 warn, 3 error, 4-6 fatal, 7 silent (overrides the config and SHAPER_LOG_LEVEL)
      --check            validate the config and exit: 0 if valid, 2 if not (like nginx -t)
      --demo             also start demo backends on the config's loopback targets
      --profile FILE     record a CPU profile while running; written to FILE at shutdown (Chrome DevTools opens it)
      --pid-file FILE    write the pid to FILE once started (an upgrade rewrites it with the new pid; for systemd's PIDFile=)
  -v, --version          print the version
  -h, --help             this text

Signals: SIGHUP reloads the config (as do saving the file or a TLS file it names, unless "watch": false, and
shaper-proxy ctl reload or POST /reload); SIGINT/SIGTERM drain and exit;
SIGUSR1 / SIGUSR2 log the stats (as GET /stats) as one line (msg "stats"); SIGWINCH upgrades (as shaper-proxy ctl
upgrade: the program on disk starts, takes over the listening sockets, and this process drains and exits), unless
the process has a controlling terminal (a window resize sends SIGWINCH).
`;

/** Set when an upgrade started this process: failures before it is ready go to the old process too. */
let handed: UpgradeChild | null = null;


function fail(message: string, status = 2): never {
  handed?.failed(message);
  process.stderr.write(`shaper-proxy: ${message}\n`);
  process.exit(status);
}

async function load(file: string, logLevel: string | undefined): Promise<ProxyConfig> {
  const config = await loadConfigFile(file, process.env);
  return logLevel ? { ...config, log: { ...config.log, level: logLevel } } : config;
}

/**
 * The proxy's modules, in waves: a few large subgraphs first, then index.ts, which finds them
 * loaded. Node's ESM loader reads a graph's files all at once, so under a small descriptor limit
 * (`ulimit -n 64`, test/e2e/emfile.test.ts) one wave of some 140 modules ran out of descriptors
 * (EMFILE) before the proxy had started; in waves it starts under 40.
 */
async function loadProxy(): Promise<typeof import('./index.js')> {
  await import('./shaping/shaper.js');
  await import('./server/acceptor.js');
  await import('./observe/metrics.js');
  await import('./admin/api.js');
  return import('./index.js');
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === 'ctl') {
    const { runCtl } = await import('./ctl.js');
    process.exitCode = await runCtl(argv.slice(1));
    return;
  }
  if (argv[0] === 'schema') {
    const { configJsonSchema } = await import('./config/json-schema.js');
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return;
  }
  let args;
  try {
    args = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        'log-level': { type: 'string', short: 'l' },
        check: { type: 'boolean', default: false },
        demo: { type: 'boolean', default: false },
        profile: { type: 'string' },
        'pid-file': { type: 'string' },
        version: { type: 'boolean', short: 'v', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values;
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`);
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  if (!args.config) fail(`--config FILE is required\n\n${USAGE}`);
  const logLevel = args['log-level'] === undefined ? undefined : parseLogLevel(args['log-level']);
  if (logLevel === undefined && args['log-level'] !== undefined) fail(`--log-level: "${args['log-level']}" is not a log level (use ${LOG_LEVEL_HELP})`);

  try {
    handed = upgradeChild();
  } catch (err) {
    fail(`$SHAPER_UPGRADE is not what an upgrading shaper-proxy sets: ${(err as Error).message}`);
  }
  let config: ProxyConfig;
  try {
    config = await load(args.config, logLevel);
    await stateDirReady(config, !args.check); // made and written to at start; --check writes nothing
  } catch (err) {
    if (isProxyError(err)) fail(`${err.code}: ${err.message}`);
    throw err;
  }
  if (args.check) {
    const ports = config.apps.reduce((n, a) => n + a.ports.length, 0);
    const targets = config.apps.reduce((n, a) => n + a.targets.length, 0);
    process.stdout.write(`${args.config}: OK (${config.apps.length} apps, ${ports} ports, ${targets} targets)\n`);
    return;
  }

  const log = createLogger(config.log.level);
  installCrashGuards(log);
  const file = args.config;
  const adjust = (c: ProxyConfig): ProxyConfig => (logLevel ? { ...c, log: { ...c.log, level: logLevel } } : c);
  // Upgrades run the same command line. Demo backends cannot be handed over; and a systemd service
  // without a pid file would end when this process exits, its new process killed with it.
  const pidFile = args['pid-file'];
  const unavailable = args.demo
    ? 'started with --demo: its demo backends cannot be handed over (restart it instead)'
    : !pidFile && startedBySystemd()
      ? 'this systemd service runs without --pid-file: when this process exits systemd would take the service for stopped and kill the new one (add --pid-file FILE to ExecStart and PIDFile=FILE to the unit; see the README, "Upgrades")'
      : undefined;
  const program = { ...thisProgram(), ...(unavailable ? { unavailable } : {}) };
  const { createProxy } = await loadProxy();
  const proxy = createProxy(config, { log, file, adjust, ...(handed ? { inherited: handed.inherited } : {}) });
  const reloader = proxy.reloader!;

  // Watching (config `watch`, default on): saving the file, or a renewed certificate, key or CA,
  // reloads like SIGHUP. After a successful load the watches follow the config's files and `watch`.
  const tlsWatch = new FileWatch((files) => {
    log.info({ files }, 'TLS files changed on disk');
    void reload('certificate changed');
  });
  let unwatch: (() => void) | null = null;
  const watchAs = (next: ProxyConfig): void => {
    if (next.watch) {
      unwatch ??= watchConfigFile(file, () => void reload('file changed'));
      tlsWatch.set(tlsFiles(next.apps, next.admin));
    } else {
      unwatch?.();
      unwatch = null;
      tlsWatch.set([]);
    }
  };
  const reload = async (why: string): Promise<void> => {
    const result = await reloader.reload(why);
    if (result.ok) watchAs(proxy.baseConfig);
  };

  const profile = args.profile ? await startProfile(args.profile) : undefined;
  let stopDemo: (() => Promise<void>) | undefined;
  let stopping: string | null = null;
  const upgrader = upgrades(program, proxy.router, proxy, () => stopping !== null)!;
  let signalsWhileDraining = 0;
  const stop = async (signal: string, status = 0) => {
    if (stopping) {
      if (signal === 'upgrade') return;
      // Draining after an upgrade is a shutdown the operator did not ask for: their first signal
      // (systemd's stop reaches every process of the unit) lets it go on; another exits at once.
      if (stopping === 'upgrade' && signalsWhileDraining++ === 0) {
        log.info({ signal }, 'draining after an upgrade already; another signal exits at once');
        return;
      }
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = signal;
    log.info({ signal }, 'shutting down');
    unwatch?.();
    tlsWatch.close();
    await proxy.shutdown();
    await stopDemo?.();
    if (profile && args.profile) {
      await profile.stop();
      log.info({ file: args.profile }, 'CPU profile written');
    }
    if (pidFile) await removePidFile(pidFile);
    log.flush();
    setImmediate(() => process.exit(status));
  };
  // Handlers go in before anything listens, so no signal can find the process without them.
  process.on('SIGHUP', () => void reload('SIGHUP'));
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  // Stats on demand without disturbing traffic (seed 002 used SIGUSR1, seed 003 SIGUSR2): one log
  // line with the /stats document under "stats", in order with the other lines.
  for (const signal of ['SIGUSR1', 'SIGUSR2'] as const) process.on(signal, () => log.info({ signal, stats: proxy.statsDocument() }, 'stats'));
  // Upgrade (SIGUSR2, nginx's, is taken by the stats since seed 003). Honoured only without a
  // controlling terminal, as systemd runs it: on a terminal every window resize sends SIGWINCH.
  let winchIgnored = false;
  process.on('SIGWINCH', () => {
    if (!hasControllingTerminal()) void upgrader.upgrade('SIGWINCH');
    else if (!winchIgnored) {
      winchIgnored = true;
      log.warn('SIGWINCH ignored: this process has a controlling terminal, whose window resizes send SIGWINCH; upgrade with shaper-proxy ctl upgrade');
    }
  });
  upgrader.onUpgraded(() => void stop('upgrade'));

  // The pid file: at a plain start before anything listens (a path that cannot be written is a
  // clean start error); when an upgrade started this process, once it serves, just before it says
  // it is ready (the old process exits only after that, so systemd finds the new pid there).
  const writePid = async () => {
    try {
      if (pidFile) await writePidFile(pidFile);
      return true;
    } catch (err) {
      const message = `--pid-file: cannot write ${pidFile} (${(err as Error).message})`;
      if (!handed) fail(message);
      log.error(message);
      handed.failed(message);
      await stop('pid file', 2);
      return false;
    }
  };
  if (!handed && !(await writePid())) return;
  if (args.demo) stopDemo = await startDemoBackends(config, log);
  await proxy.start();
  if (handed) {
    const unused = handed.inherited.closeRest();
    if (unused.length > 0) log.info({ listeners: unused }, 'upgrade: listeners the config no longer has closed');
    if (!(await writePid())) return;
    handed.ready();
    log.info({ from: handed.from }, 'upgrade: serving; the old process drains');
  }
  if (args.demo) process.stderr.write(demoHints(config, proxy.adminPort));
  watchAs(config);
}

/**
 * A socket error that escaped a handler must not take every other connection
 * down with it. Anything else is a bug: log it and exit.
 */
function installCrashGuards(log: Logger): void {
  const NETWORK = new Set(['ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNABORTED']);
  process.on('uncaughtException', (err: NodeJS.ErrnoException) => {
    if (err.code && NETWORK.has(err.code)) {
      log.error({ err }, 'unhandled socket error (kept running)');
      return;
    }
    log.fatal({ err }, 'uncaught exception');
    handed?.failed(`uncaught exception: ${err.message}`);
    log.flush();
    process.exit(1);
  });
}

main(process.argv.slice(2)).catch((err: unknown) => {
  handed?.failed(String((err as Error).stack ?? err));
  process.stderr.write(`shaper-proxy: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
