/**
 * Everything the tests share, in one import. What a test starts, it stops: the `…For(t, …)`
 * helpers tie a server or process to the test context (`cleanup`, run last registered first).
 *
 *   backendFor(t, kind, opts?)       a helper backend: echo, sink, source, collect        (helpers/net.ts)
 *   rawServer(t, onSocket, opts?)    a server whose sockets the test handles itself       (helpers/net.ts)
 *   proxyFor(t, cfg, opts?)          an in-process proxy, with portOf()                   (helpers/proxy.ts)
 *   cliFor(t, args, env?, opts?)     the CLI as a child process                           (helpers/cli.ts)
 *   tlsTargetFor(t, cert?, opts?)    a TLS target answering like the collect backend      (helpers/tls.ts)
 *   tempDir(t, prefix?)              a temp dir                                           (helpers/base.ts)
 *   cleanup(t, fn)                   anything else to undo after the test                 (helpers/base.ts)
 *
 * startBackend, startProxy and runCli are the same without the context, for a test that stops
 * them itself at a given moment.
 */
export * from './helpers/base.js';
export * from './helpers/net.js';
export * from './helpers/proxy.js';
export * from './helpers/cli.js';
export * from './helpers/tls.js';
