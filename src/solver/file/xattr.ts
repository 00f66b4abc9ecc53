import { spawn } from 'node:child_process';

/**
 * Extended attributes of copied files. Node has no xattr API, so they are read for a whole
 * source tree by one `getfattr -R` and written by one `setfattr --restore` per copy
 * (Debian package `attr`). Like BuildKit (which logs xattr errors and goes on), failures
 * to set an attribute do not fail the copy; without the tools, attributes are not copied.
 */

/** Attributes by absolute path; paths without any are absent. */
export type XattrIndex = Map<string, Map<string, Buffer>>;

/** Keep each command line well below ARG_MAX. */
const MAX_ARG_BYTES = 96 * 1024;

/**
 * Reads the attributes of `paths` (recursively for directories with `recursive`), never
 * following symlinks. Returns an empty index when `getfattr` is not installed. Does I/O.
 */
export async function readXattrs(paths: readonly string[], recursive: boolean): Promise<XattrIndex> {
  const index: XattrIndex = new Map();
  let batch: string[] = [];
  let bytes = 0;
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const args = ['-d', '-m', '-', '-e', 'base64', '-h', '--absolute-names'];
    if (recursive) args.push('-R', '-P');
    args.push('--', ...batch);
    batch = [];
    bytes = 0;
    const r = await run('getfattr', args);
    if (r) parse(r.stdout, index);
  };
  for (const p of paths) {
    batch.push(p);
    bytes += Buffer.byteLength(p) + 1;
    if (bytes >= MAX_ARG_BYTES) await flush();
  }
  await flush();
  return index;
}

/**
 * Sets attributes on files (symlinks themselves, not their targets). Returns the tools'
 * complaints (unsupported or forbidden attributes) rather than throwing. Does I/O.
 */
export async function writeXattrs(
  items: readonly { path: string; xattrs: Map<string, Buffer> }[],
): Promise<string[]> {
  if (items.length === 0) return [];
  const blocks: string[] = [];
  for (const { path, xattrs } of items) {
    const lines = [`# file: ${quote(path)}`];
    for (const [k, v] of xattrs) lines.push(`${quote(k)}=0s${v.toString('base64')}`);
    blocks.push(`${lines.join('\n')}\n`);
  }
  const r = await run('setfattr', ['-h', '--restore=-'], `${blocks.join('\n')}\n`);
  if (!r) return ['extended attributes not copied: setfattr not found'];
  return r.code === 0 ? [] : r.stderr.split('\n').filter((l) => l.trim() !== '');
}

/** Runs a tool to completion; undefined when it is not installed. */
function run(
  cmd: string,
  args: string[],
  input?: string,
): Promise<{ code: number | null; stdout: string; stderr: string } | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (b: Buffer) => out.push(b));
    child.stderr?.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? resolve(undefined) : reject(e)));
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(out).toString('latin1'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** getfattr's quoting: `\ooo` for whitespace, backslash, '=' and non-printable bytes. */
function quote(s: string): string {
  let out = '';
  for (const c of Buffer.from(s)) {
    if (c > 0x20 && c < 0x7f && c !== 0x5c && c !== 0x3d) out += String.fromCharCode(c);
    else out += `\\${c.toString(8).padStart(3, '0')}`;
  }
  return out;
}

function unquote(s: string): string {
  if (!s.includes('\\')) return Buffer.from(s, 'latin1').toString('utf8');
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && /^[0-7]{3}$/.test(s.slice(i + 1, i + 4))) {
      bytes.push(Number.parseInt(s.slice(i + 1, i + 4), 8));
      i += 3;
    } else bytes.push(s.charCodeAt(i) & 0xff);
  }
  return Buffer.from(bytes).toString('utf8');
}

function parse(out: string, index: XattrIndex): void {
  let current: Map<string, Buffer> | undefined;
  for (const line of out.split('\n')) {
    if (line.startsWith('# file: ')) {
      current = new Map();
      index.set(unquote(line.slice(8)), current);
    } else if (line.length > 0 && current) {
      const eq = line.indexOf('=');
      const name = unquote(eq < 0 ? line : line.slice(0, eq));
      const v = eq < 0 ? '' : line.slice(eq + 1);
      let value = Buffer.alloc(0);
      if (v.startsWith('0s')) value = Buffer.from(v.slice(2), 'base64');
      else if (v.startsWith('0x')) value = Buffer.from(v.slice(2), 'hex');
      else if (v.startsWith('"') && v.endsWith('"')) value = Buffer.from(unquote(v.slice(1, -1)), 'latin1');
      current.set(name, value);
    }
  }
}
