/**
 * `shaper-proxy ctl`: the admin API from the command line, for operators. Readable tables by
 * default, the API's JSON with --json. Exit status: 0 done, 1 the API refused or could not be
 * reached, 2 a usage error.
 *
 * ctl/args.ts reads the command line, ctl/client.ts talks to the API, ctl/commands.ts runs the
 * commands, ctl/tables.ts renders the answers.
 */
import { adminUrl, parseCtlArgs } from './ctl/args.js';
import { AdminClient } from './ctl/client.js';
import { COMMANDS } from './ctl/commands.js';
import { CtlError, DEFAULT_ADMIN_URL, USAGE, usage } from './ctl/usage.js';

export { DEFAULT_ADMIN_URL } from './ctl/usage.js';

interface Out {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

const processOut: Out = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

/** Runs `ctl` with its arguments (after "ctl"); resolves to the exit status. */
export async function runCtl(argv: string[], env: NodeJS.ProcessEnv = process.env, out: Out = processOut): Promise<number> {
  try {
    await ctl(argv, env, out);
    return 0;
  } catch (err) {
    if (err instanceof CtlError) {
      out.stderr(`shaper-proxy ctl: ${err.message}\n`);
      return err.exitStatus;
    }
    throw err;
  }
}

async function ctl(argv: string[], env: NodeJS.ProcessEnv, out: Out): Promise<void> {
  const { values: opts, positionals } = parseCtlArgs(argv);
  if (opts.help) {
    out.stdout(USAGE);
    return;
  }
  const [command, name, ...extra] = positionals;
  if (command === undefined) throw usage('a command is required');
  if (extra.length > 0) throw usage(`unexpected ${JSON.stringify(extra[0])}`);
  const token = opts.token ?? env['SHAPER_ADMIN_TOKEN'];
  if (token !== undefined && token.trim() === '' && opts.token !== undefined) throw usage('--token: must not be empty');
  const api = new AdminClient(adminUrl(opts.admin ?? env['SHAPER_ADMIN_URL'] ?? DEFAULT_ADMIN_URL), token?.trim() || undefined);
  const run = COMMANDS.get(command);
  if (!run) throw usage(`unknown command ${JSON.stringify(command)}`);
  await run({ command, name, opts, api, show: (value, table) => out.stdout(opts.json ? `${JSON.stringify(value, null, 2)}\n` : table()) });
}
