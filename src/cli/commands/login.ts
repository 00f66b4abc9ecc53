import { createInterface } from 'node:readline/promises';
import { text } from 'node:stream/consumers';
import type { Command } from 'commander';
import { DrayError, login, logout } from '../../index.ts';
import { type CliContext, type Run, signalOf } from '../context.ts';

export interface LoginFlags {
  username?: string;
  password?: string;
  passwordStdin?: boolean;
}

/** Reads one line from a TTY without echoing it (the password prompt). */
async function promptHidden(ctx: CliContext, question: string): Promise<string> {
  const rl = createInterface({ input: ctx.io.stdin, output: ctx.io.stderr, terminal: true });
  const out = rl as unknown as { _writeToOutput: (s: string) => void };
  const write = out._writeToOutput.bind(rl);
  let asked = false;
  out._writeToOutput = (s: string) => {
    // Echo the prompt itself, then nothing of what is typed.
    if (!asked) {
      asked = true;
      write(s);
    }
  };
  try {
    return await rl.question(question);
  } finally {
    rl.close();
    ctx.io.stderr.write('\n');
  }
}

async function prompt(ctx: CliContext, question: string): Promise<string> {
  const rl = createInterface({ input: ctx.io.stdin, output: ctx.io.stderr, terminal: ctx.io.stdinIsTTY });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

/** The username and password, from flags, stdin or prompts, as docker login takes them. */
export async function loginCredentials(
  ctx: CliContext,
  flags: LoginFlags,
): Promise<{ username: string; password: string }> {
  if (flags.password && flags.passwordStdin) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', '--password and --password-stdin are mutually exclusive');
  }
  if (flags.passwordStdin && !flags.username) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', 'must provide --username with --password-stdin');
  }
  let username = flags.username ?? '';
  let password = flags.password ?? '';
  if (flags.password)
    ctx.io.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  if (flags.passwordStdin) password = (await text(ctx.io.stdin)).replace(/\r?\n$/, '');
  if (!username) {
    if (!ctx.io.stdinIsTTY) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        'cannot perform an interactive login from a non TTY device',
        {
          hint: 'pass -u USER and --password-stdin',
        },
      );
    }
    username = await prompt(ctx, 'Username: ');
  }
  if (!password) {
    if (!ctx.io.stdinIsTTY) {
      throw new DrayError(
        'DRAY_INVALID_ARGUMENT',
        'cannot perform an interactive login from a non TTY device',
        {
          hint: 'pass --password-stdin',
        },
      );
    }
    password = await promptHidden(ctx, 'Password: ');
  }
  return { username, password };
}

/** Options of `dray login` once the credentials are known. */
export function loginOptions(
  ctx: CliContext,
  creds: { username: string; password: string },
): Parameters<typeof login>[1] {
  return {
    configDir: ctx.env.configDir,
    insecureRegistries: ctx.env.insecureRegistries,
    ...creds,
    ...signalOf(ctx),
  };
}

/** Options of `dray logout`. */
export function logoutOptions(ctx: CliContext): Parameters<typeof logout>[1] {
  return { configDir: ctx.env.configDir, ...signalOf(ctx) };
}

export function registerLogin(program: Command, run: Run): void {
  program
    .command('login')
    .description('Log in to a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .option('-u, --username <username>', 'username')
    .option('-p, --password <password>', 'password or access token (insecure: prefer --password-stdin)')
    .option('--password-stdin', 'take the password from stdin')
    .action((server: string | undefined, flags: LoginFlags) =>
      run(async (ctx) => {
        const creds = await loginCredentials(ctx, flags);
        await login(server, loginOptions(ctx, creds));
        ctx.print('Login Succeeded');
      }),
    );
  program
    .command('logout')
    .description('Log out from a registry (default: Docker Hub)')
    .argument('[server]', 'registry host[:port]')
    .action((server: string | undefined) =>
      run(async (ctx) => {
        const r = await logout(server, logoutOptions(ctx));
        ctx.print(r.removed ? `Removing login credentials for ${r.host}` : `Not logged in to ${r.host}`);
      }),
    );
}
