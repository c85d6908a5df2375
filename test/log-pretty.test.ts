/**
 * The log on a terminal (src/log-pretty.ts): one line per event with the time, the level, the
 * message and the fields as key=value; and the CLI run under a pseudo-terminal (util-linux
 * `script`) writes such lines, while through a pipe it writes JSON lines.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { prettyFactory } from 'pino-pretty';
import { terminalMessage, terminalOptions } from '../src/log-pretty.js';
import { backendFor, CLI, cleanup, cliFor, collected, freePort, pattern, roundTrip, tempDir, waitFor, which } from './helpers.js';

const closeLine = {
  level: 30,
  time: '2025-01-02T03:04:05.678Z',
  pid: 4242,
  instance: 'host-1',
  app: 'web',
  port: 5001,
  client: '127.0.0.1:40000',
  customer: null,
  tier: 'free',
  bytesDown: 1000,
  reason: 'done',
  note: 'two words',
  where: { a: 1, b: [true] },
  msg: 'connection closed',
};

test('the message, then every field as key=value: strings bare unless they need quotes, objects as JSON', () => {
  assert.equal(
    terminalMessage(closeLine),
    'connection closed app=web port=5001 client=127.0.0.1:40000 customer=null tier=free bytesDown=1000 reason=done note="two words" where={"a":1,"b":[true]}',
  );
  // A multi-line value, an error with its stack, a line break in the message: still one line.
  const err = { type: 'Error', message: 'boom', stack: 'Error: boom\n    at x (y.js:1:2)' };
  const text = terminalMessage({ level: 50, msg: 'reload failed\nold config stays', error: 'a: bad\nb: worse', err, empty: '', eq: 'a=b' });
  assert.equal(text, 'reload failed\\nold config stays error="a: bad\\nb: worse" err={"type":"Error","message":"boom","stack":"Error: boom\\n    at x (y.js:1:2)"} empty="" eq="a=b"');
  assert.equal(terminalMessage({ level: 30, n: 1 }), 'n=1');
});

test('as pino-pretty writes it: [local time] LEVEL: message fields, one line; pid, hostname and instance left out', () => {
  const format = prettyFactory(terminalOptions(false));
  const out = format(JSON.stringify({ ...closeLine, err: { type: 'Error', message: 'x', stack: 'Error: x\n  at y' }, hostname: 'h' }));
  assert.equal(out.split('\n').length, 2, JSON.stringify(out));
  assert.ok(out.endsWith('\n'));
  const local = new Date(closeLine.time);
  const hh = (n: number, w = 2) => String(n).padStart(w, '0');
  const time = `${hh(local.getHours())}:${hh(local.getMinutes())}:${hh(local.getSeconds())}.${hh(local.getMilliseconds(), 3)}`;
  assert.ok(out.startsWith(`[${time}] INFO: connection closed app=web port=5001 `), out);
  assert.doesNotMatch(out, /4242|host-1|hostname=|instance=|pid=/);
  assert.match(out, / err=\{"type":"Error","message":"x","stack":"Error: x\\n {2}at y"\}\n$/);
});

/** Strip the colours and the terminal's carriage returns. */
// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').replace(/\r/g, '');

test('the CLI on a terminal (under script(1)) writes one line per event; through a pipe, JSON lines', async (t) => {
  const script = which('script');
  if (!script) return t.skip('util-linux script(1) not installed');
  const dir = await tempDir(t, 'shaper-tty-');
  const backend = await backendFor(t, 'collect');
  const port = await freePort();
  const file = path.join(dir, 'proxy.json');
  await writeFile(file, JSON.stringify({ bind: '127.0.0.1', admin: false, drainTimeout: '0s', apps: [{ name: 'web', ports: [port], targets: [backend.address] }] }));

  // The shell prints its pid, then becomes the proxy (exec): the pid to stop it by.
  const command = `echo "pid $$"; exec '${process.execPath}' '${CLI}' --config '${file}'`;
  const proc = spawn(script, ['-qfec', command, '/dev/null'], { env: { ...process.env, SHAPER_STATE_DIR: dir }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise((r) => proc.on('exit', r));
  cleanup(t, async () => {
    const pid = /^pid (\d+)$/m.exec(plain(out))?.[1];
    if (pid) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    await exited;
  });
  const lines = () => plain(out).split('\n').filter((l) => l.startsWith('['));
  const listening = (await waitFor(() => lines().find((l) => / INFO: listening /.test(l)), 10_000, 'the listening line'))!;
  assert.match(listening, new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: listening app=web what=app:web host=127\\.0\\.0\\.1 port=${port} attempts=1$`));

  const data = pattern(3000);
  assert.equal((await roundTrip(port, data)).toString(), collected(data));
  const closed = (await waitFor(() => lines().find((l) => / INFO: connection closed /.test(l)), 5000, 'the close line'))!;
  assert.match(closed, new RegExp(`^\\[[\\d:.]+\\] INFO: connection closed id=\\d+ app=web client=127\\.0\\.0\\.1:\\d+ target=${backend.address} bytesUp=3000 .*\\bport=${port}\\b.*\\breason=done$`));
  assert.doesNotMatch(closed, /\binstance=|\bpid=/);
  for (const line of lines()) assert.match(line, /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG): \S/, line);

  // The same proxy's log through a pipe: JSON lines.
  await new Promise((r) => {
    proc.once('exit', r);
    proc.kill('SIGTERM');
  });
  const piped = cliFor(t, ['--config', file]);
  const first = await piped.waitLog((l) => l['msg'] === 'listening', 10_000, 'the listening line (JSON)');
  assert.equal(first['level'], 30);
  assert.equal(first['port'], port);
  const line = piped.stdout.split('\n')[0]!;
  assert.doesNotThrow(() => JSON.parse(line), line);
});
