/**
 * Test helper: a tiny, deliberately permissive ustar/pax writer that writes exactly the
 * headers it is given (absolute names, `..`, NUL bytes, sizes that lie), and the corpus of
 * malicious layers that safe unpack must refuse or confine. Generated in code, no binary
 * fixtures. Not part of the library.
 */

export type EvilType = 'file' | 'dir' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

export interface EvilEntry {
  name: string;
  type?: EvilType;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  body?: string | Buffer;
  /** Size written in the header when it must differ from the body's length. */
  size?: number;
  devmajor?: number;
  devminor?: number;
  xattrs?: Record<string, Buffer | string>;
  /** Write the name (and link name) as pax records even when they fit ustar. */
  pax?: boolean;
}

const typeflag: Record<EvilType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

function block(fields: {
  name: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  type: string;
  linkname: Buffer;
  devmajor: number;
  devminor: number;
}): Buffer {
  const b = Buffer.alloc(512);
  fields.name.copy(b, 0, 0, Math.min(100, fields.name.length));
  b.write(octal(fields.mode, 8), 100, 'latin1');
  b.write(octal(fields.uid, 8), 108, 'latin1');
  b.write(octal(fields.gid, 8), 116, 'latin1');
  b.write(octal(fields.size, 12), 124, 'latin1');
  b.write(octal(fields.mtime, 12), 136, 'latin1');
  b.write('        ', 148, 'latin1');
  b.write(fields.type, 156, 'latin1');
  fields.linkname.copy(b, 157, 0, Math.min(100, fields.linkname.length));
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  b.write('root', 265, 'latin1');
  b.write('root', 297, 'latin1');
  b.write(octal(fields.devmajor, 8), 329, 'latin1');
  b.write(octal(fields.devminor, 8), 337, 'latin1');
  let sum = 0;
  for (const c of b) sum += c;
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return b;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const rest = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
  let len = rest.length + 1;
  while (String(len).length + rest.length !== len) len = String(len).length + rest.length;
  return Buffer.concat([Buffer.from(String(len)), rest]);
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

/** Builds an uncompressed tar from `entries`, exactly as given (plus the two end blocks). */
export function evilTar(entries: readonly EvilEntry[], o: { end?: boolean } = {}): Buffer {
  const out: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = typeof e.body === 'string' ? Buffer.from(e.body) : (e.body ?? Buffer.alloc(0));
    const name = Buffer.from(e.name);
    const linkname = Buffer.from(e.linkname ?? '');
    const records: Buffer[] = [];
    if (e.pax || name.length > 100) records.push(paxRecord('path', name));
    if (e.pax || linkname.length > 100)
      if (linkname.length > 0) records.push(paxRecord('linkpath', linkname));
    for (const [k, v] of Object.entries(e.xattrs ?? {})) {
      records.push(paxRecord(`SCHILY.xattr.${k}`, typeof v === 'string' ? Buffer.from(v) : v));
    }
    if (records.length > 0) {
      const data = Buffer.concat(records);
      out.push(
        block({
          name: Buffer.from('PaxHeader'),
          mode: 0o644,
          uid: 0,
          gid: 0,
          size: data.length,
          mtime: 0,
          type: 'x',
          linkname: Buffer.alloc(0),
          devmajor: 0,
          devminor: 0,
        }),
        data,
        pad(data.length),
      );
    }
    const size = e.size ?? (type === 'file' ? body.length : 0);
    out.push(
      block({
        name,
        mode: e.mode ?? (type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : 0o644),
        uid: e.uid ?? 0,
        gid: e.gid ?? 0,
        size,
        mtime: e.mtime ?? 1_700_000_000,
        type: typeflag[type],
        linkname,
        devmajor: e.devmajor ?? 0,
        devminor: e.devminor ?? 0,
      }),
    );
    if (body.length > 0) out.push(body, pad(body.length));
  }
  if (o.end !== false) out.push(Buffer.alloc(1024));
  return Buffer.concat(out);
}

/** How a case must end: an error with one of these codes, or success with everything inside the root. */
export type EvilOutcome = { refused: 'DRAY_UNSAFE_ARCHIVE' | 'DRAY_INVALID_ARCHIVE' } | { confined: true };

export interface EvilCase {
  name: string;
  /** `outside` is the absolute path of the sentinel directory next to the root. */
  entries: (outside: string) => EvilEntry[];
  outcome: EvilOutcome;
  /** Options for applyLayer (e.g. simulate an unprivileged run). */
  options?: { privileged?: boolean };
  /** Extra checks on the root after a confined case (paths relative to the root). */
  expectInRoot?: (
    outside: string,
  ) => Array<{ path: string; type: 'file' | 'dir' | 'symlink' | 'absent'; content?: string }>;
}

/** `outside` without its leading '/', to build names that would land in it through `/`. */
const rel = (abs: string): string => abs.replace(/^\/+/, '');

/** The malicious corpus. Each case would write into (or delete from) `outside` if unpack were naive. */
export const evilCases: EvilCase[] = [
  {
    name: 'dot-dot entry ../x',
    entries: () => [{ name: '../outside/x', body: 'pwned' }],
    outcome: { refused: 'DRAY_UNSAFE_ARCHIVE' },
  },
  {
    name: 'absolute entry name',
    entries: (out) => [{ name: `${out}/abs`, body: 'pwned' }],
    outcome: { confined: true },
    expectInRoot: (out) => [{ path: `${rel(out)}/abs`, type: 'file', content: 'pwned' }],
  },
  {
    name: 'a/../../x climbs above the root',
    entries: () => [{ name: 'a/../../outside/x', body: 'pwned' }],
    outcome: { refused: 'DRAY_UNSAFE_ARCHIVE' },
  },
  {
    name: 'symlink a -> / then a/<outside>/x',
    entries: (out) => [
      { name: 'a', type: 'symlink', linkname: '/' },
      { name: `a/${rel(out)}/x`, body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: (out) => [
      { path: 'a', type: 'symlink' },
      { path: `${rel(out)}/x`, type: 'file', content: 'pwned' },
    ],
  },
  {
    name: 'symlink a -> ../../../.. then a/<outside>/x',
    entries: (out) => [
      { name: 'a', type: 'symlink', linkname: '../../../../../../..' },
      { name: `a/${rel(out)}/x`, body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: (out) => [{ path: `${rel(out)}/x`, type: 'file', content: 'pwned' }],
  },
  {
    name: 'symlink to outside, replaced by a directory, then a file through it',
    entries: (out) => [
      { name: 'd', type: 'symlink', linkname: out },
      { name: 'd', type: 'dir' },
      { name: 'd/passwd', body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: () => [
      { path: 'd', type: 'dir' },
      { path: 'd/passwd', type: 'file', content: 'pwned' },
    ],
  },
  {
    name: 'directory replaced by a symlink to outside mid-archive, then a file through it',
    entries: (out) => [
      { name: 'd', type: 'dir', mode: 0o777 },
      { name: 'd/keep', body: 'ok' },
      { name: 'd', type: 'symlink', linkname: out },
      { name: 'd/passwd', body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: (out) => [
      { path: 'd', type: 'symlink' },
      { path: `${rel(out)}/passwd`, type: 'file', content: 'pwned' },
    ],
  },
  {
    name: 'hard link to /etc/passwd',
    entries: () => [{ name: 'pw', type: 'link', linkname: '/etc/passwd' }],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'hard link to ../x',
    entries: () => [{ name: 'pw', type: 'link', linkname: '../outside/passwd' }],
    outcome: { refused: 'DRAY_UNSAFE_ARCHIVE' },
  },
  {
    name: 'hard link through a symlinked parent',
    entries: (out) => [
      { name: 's', type: 'symlink', linkname: out },
      { name: 'pw', type: 'link', linkname: 's/passwd' },
    ],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'hard link to a symlink that points outside, then a file written at the link',
    entries: (out) => [
      { name: 's', type: 'symlink', linkname: `${out}/passwd` },
      { name: 'h', type: 'link', linkname: 's' },
      { name: 'h', body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: () => [
      { path: 's', type: 'symlink' },
      { path: 'h', type: 'file', content: 'pwned' },
    ],
  },
  {
    name: 'file over an existing symlink to outside',
    entries: (out) => [
      { name: 'f', type: 'symlink', linkname: `${out}/passwd` },
      { name: 'f', body: 'pwned' },
    ],
    outcome: { confined: true },
    expectInRoot: () => [{ path: 'f', type: 'file', content: 'pwned' }],
  },
  {
    name: 'whiteout ../.wh.x',
    entries: () => [{ name: '../outside/.wh.passwd' }],
    outcome: { refused: 'DRAY_UNSAFE_ARCHIVE' },
  },
  {
    name: 'whiteout through a symlinked parent',
    entries: (out) => [
      { name: 's', type: 'symlink', linkname: out },
      { name: 's/.wh.passwd' },
      { name: 's/.wh..wh..opq' },
    ],
    outcome: { confined: true },
  },
  {
    name: 'whiteout of the root (.wh..)',
    entries: () => [{ name: '.wh..' }],
    outcome: { refused: 'DRAY_UNSAFE_ARCHIVE' },
  },
  {
    name: 'bare whiteout .wh.',
    entries: () => [{ name: 'dir/.wh.' }],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'device node when not root',
    entries: () => [{ name: 'mem', type: 'char', devmajor: 1, devminor: 1, mode: 0o666 }],
    options: { privileged: false },
    outcome: { confined: true },
    expectInRoot: () => [{ path: 'mem', type: 'absent' }],
  },
  {
    name: 'size header larger than the body (truncated archive)',
    entries: () => [{ name: 'big', body: 'short', size: 1 << 30 }],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'name with a NUL byte',
    entries: () => [{ name: 'ok\0../../outside/x', body: 'pwned', pax: true }],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'path longer than PATH_MAX',
    entries: () => [{ name: `${`${'d'.repeat(200)}/`.repeat(25)}x`, body: 'deep' }],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'symlink loop',
    entries: () => [
      { name: 'l1', type: 'symlink', linkname: 'l2' },
      { name: 'l2', type: 'symlink', linkname: 'l1' },
      { name: 'l1/x', body: 'loop' },
    ],
    outcome: { refused: 'DRAY_INVALID_ARCHIVE' },
  },
  {
    name: 'directory metadata after the directory became a symlink to outside',
    entries: (out) => [
      { name: 'm', type: 'dir', mode: 0o777, mtime: 1 },
      { name: 'm', type: 'symlink', linkname: out },
    ],
    outcome: { confined: true },
    expectInRoot: () => [{ path: 'm', type: 'symlink' }],
  },
  {
    name: 'xattr on a symlink to outside',
    entries: (out) => [
      { name: 'x', type: 'symlink', linkname: `${out}/passwd`, xattrs: { 'trusted.evil': 'y' } },
    ],
    outcome: { confined: true },
  },
];
