import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { isDrayError } from '../errors.ts';
import { createTarWriter, encodeHeader, normalizeName, readTar } from './index.ts';
import type { TarHeader } from './types.ts';

type Entry = { header: TarHeader; data: Buffer };

async function writeTar(
  entries: Array<[TarHeader, (Buffer | Readable)?]>,
  o: { preciseTimes?: boolean } = {},
): Promise<Buffer> {
  const w = createTarWriter(o);
  const out = buffer(w.readable);
  for (const [h, b] of entries) await w.add(h, b);
  await w.finish();
  return out;
}

async function readAll(input: Buffer | Readable, chunk = 0): Promise<Entry[]> {
  const stream = Buffer.isBuffer(input) ? Readable.from(chunked(input, chunk), { objectMode: false }) : input;
  const out: Entry[] = [];
  for await (const e of readTar(stream)) out.push({ header: e.header, data: await buffer(e.body) });
  return out;
}

/** Splits into `n`-byte chunks (0: one chunk) to exercise headers that straddle chunks. */
function* chunked(b: Buffer, n: number): Generator<Buffer> {
  if (n <= 0) {
    yield b;
    return;
  }
  for (let i = 0; i < b.length; i += n) yield b.subarray(i, i + n);
}

function hdr(h: Partial<TarHeader> & Pick<TarHeader, 'name' | 'type'>): TarHeader {
  return { mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1_700_000_000, ...h };
}

/** Rewrites a header block in place (via fn) and fixes its checksum. */
function patch(block: Buffer, fn: (b: Buffer) => void, signedSum = false): Buffer {
  fn(block);
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const c of block) sum += signedSum && c > 127 ? c - 256 : c;
  block.write(`${(sum >>> 0 === sum ? sum : sum & 0o777777).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return block;
}

async function rejectsInvalid(input: Buffer, pattern: RegExp, readBodies = true): Promise<void> {
  await assert.rejects(
    async () => {
      for await (const e of readTar(Readable.from([input]))) {
        if (readBodies) await buffer(e.body);
      }
    },
    (err: unknown) => {
      assert.ok(isDrayError(err, 'DRAY_INVALID_ARCHIVE'), `expected DRAY_INVALID_ARCHIVE, got ${err}`);
      assert.match((err as Error).message, pattern);
      return true;
    },
  );
}

const CAP = Buffer.from('0100000200200000000000000000000000000000', 'hex');
const BIN = Buffer.from([1, 0, 0, 2, 0xff, 0xfe, 0x80, 0x20, 0x0a, 0x3d]); // includes '\n' and '='
const longName = `${'directory-with-a-long-name/'.repeat(11)}file-ü.txt`; // > 255 bytes

function allTypes(): Array<[TarHeader, Buffer?]> {
  return [
    [hdr({ name: 'dir', type: 'directory', mode: 0o1755 })],
    [
      hdr({ name: 'dir/file', type: 'file', mode: 0o4755, size: 11, uid: 1000, gid: 1000 }),
      Buffer.from('hello world'),
    ],
    [hdr({ name: longName, type: 'file', size: 3 }), Buffer.from('abc')],
    [hdr({ name: 'dir/hard', type: 'link', linkname: 'dir/file' })],
    [hdr({ name: 'dir/hard-long', type: 'link', linkname: longName })],
    [hdr({ name: 'dir/sym', type: 'symlink', mode: 0o777, linkname: `../${'t'.repeat(150)}/ünï` })],
    [hdr({ name: 'dev/null', type: 'character-device', mode: 0o666, devmajor: 1, devminor: 3 })],
    [hdr({ name: 'dev/sda', type: 'block-device', mode: 0o660, devmajor: 8, devminor: 0 })],
    [hdr({ name: 'fifo', type: 'fifo', mode: 0o600 })],
    [
      hdr({
        name: 'big-ids',
        type: 'file',
        uid: 2_097_152,
        gid: 4_000_000_000,
        uname: 'ünïcode-user',
        gname: 'g'.repeat(40),
      }),
      Buffer.alloc(0),
    ],
    [
      hdr({
        name: 'usr/bin/ping',
        type: 'file',
        mode: 0o755,
        size: 4,
        xattrs: new Map([
          ['security.capability', CAP],
          ['user.bin', BIN],
          ['user.empty', Buffer.alloc(0)],
        ]),
      }),
      Buffer.from('ping'),
    ],
    [hdr({ name: 'old', type: 'file', mtime: -86_400 })],
    [hdr({ name: 'future', type: 'file', mtime: 2 ** 34 })],
    [hdr({ name: 'with-pax', type: 'file', pax: new Map([['comment', Buffer.from('kept\nverbatim')]]) })],
    [hdr({ name: 'sizes/512', type: 'file', size: 512 }), Buffer.alloc(512, 7)],
    [hdr({ name: 'sizes/513', type: 'file', size: 513 }), Buffer.alloc(513, 8)],
  ];
}

test('round trip: every entry type, long and unicode names, big ids, devices, binary xattrs', async () => {
  const entries = allTypes();
  const tar = await writeTar(entries);
  assert.equal(tar.length % 512, 0);
  for (const chunk of [0, 1, 7, 512, 4096]) {
    const got = await readAll(tar, chunk);
    assert.equal(got.length, entries.length);
    for (const [i, [h, body]] of entries.entries()) {
      const g = got[i]!;
      assert.deepEqual(g.header, h, `entry ${h.name} (chunk ${chunk})`);
      assert.deepEqual(g.data, body ?? Buffer.alloc(0));
    }
  }
});

test('round trip: precise times are kept only when asked', async () => {
  const h = hdr({ name: 'f', type: 'file', mtime: 1_700_000_000.125, atime: 1.5, ctime: -2.25 });
  const [precise] = await readAll(await writeTar([[h]], { preciseTimes: true }));
  assert.equal(precise!.header.mtime, 1_700_000_000.125);
  assert.equal(precise!.header.atime, 1.5);
  assert.equal(precise!.header.ctime, -2.25);
  const [coarse] = await readAll(await writeTar([[h]]));
  assert.equal(coarse!.header.mtime, 1_700_000_000);
  assert.equal(coarse!.header.atime, undefined);
  assert.equal(coarse!.header.ctime, undefined);
});

test('writer: deterministic bytes, pax only when needed, xattr order irrelevant', async () => {
  const a = await writeTar(allTypes());
  const b = await writeTar(allTypes());
  assert.ok(a.equals(b));
  const x1 = hdr({
    name: 'f',
    type: 'file',
    xattrs: new Map([
      ['user.a', Buffer.from('1')],
      ['user.b', Buffer.from('2')],
    ]),
  });
  const x2 = hdr({
    name: 'f',
    type: 'file',
    xattrs: new Map([
      ['user.b', Buffer.from('2')],
      ['user.a', Buffer.from('1')],
    ]),
  });
  assert.ok((await writeTar([[x1]])).equals(await writeTar([[x2]])));
  // plain ustar: one header block, no pax
  const plain = encodeHeader(hdr({ name: 'a/b', type: 'file' }));
  assert.equal(plain.length, 1);
  // 200-byte ASCII name splits into prefix/name without pax
  const split = encodeHeader(hdr({ name: `${'p'.repeat(120)}/${'n'.repeat(79)}`, type: 'file' }));
  assert.equal(split.length, 1);
  assert.equal(split[0]!.toString('latin1', 345, 465), 'p'.repeat(120));
  // non-ASCII, over-long or big values need pax
  for (const h of [
    hdr({ name: 'ü', type: 'file' }),
    hdr({ name: 'x'.repeat(101), type: 'file' }),
    hdr({ name: 'f', type: 'file', uid: 2_097_152 }),
    hdr({ name: 'f', type: 'symlink', linkname: 'l'.repeat(101) }),
  ]) {
    const blocks = encodeHeader(h);
    assert.equal(blocks.length, 3, h.name);
    assert.equal(blocks[0]![156], 0x78); // 'x'
  }
});

test('writer: body size must match header.size', async () => {
  // [header, body, archive still usable afterwards]
  for (const [h, body, usable] of [
    [hdr({ name: 'f', type: 'file', size: 3 }), Buffer.from('ab'), true],
    [hdr({ name: 'f', type: 'file', size: 3 }), undefined, true],
    [hdr({ name: 'd', type: 'directory', size: 3 }), undefined, true],
    [hdr({ name: 'd', type: 'directory' }), Buffer.from('x'), true],
    [hdr({ name: 's', type: 'symlink' }), undefined, true],
    [hdr({ name: 'f', type: 'file', size: 3 }), Readable.from([Buffer.from('abcd')]), false],
    [hdr({ name: 'f', type: 'file', size: 3 }), Readable.from([Buffer.from('a')]), false],
  ] as const) {
    const w = createTarWriter();
    const out = buffer(w.readable);
    out.catch(() => {});
    await assert.rejects(w.add(h, body), (e: unknown) => {
      assert.ok(isDrayError(e, 'DRAY_INVALID_ARGUMENT'), String(e));
      assert.match((e as Error).message, /^tar entry "[fds]": /);
      return true;
    });
    if (usable) {
      await w.finish();
      assert.equal((await out).length, 1024);
    } else await assert.rejects(w.finish(), (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'));
  }
});

test('writer: backpressure keeps a slow reader and a big body bounded', async () => {
  const w = createTarWriter();
  let pushed = 0;
  const body = new Readable({
    read() {
      if (pushed >= 8 << 20) return void this.push(null);
      pushed += 1 << 16;
      this.push(Buffer.alloc(1 << 16));
    },
  });
  const done = w.add(hdr({ name: 'big', type: 'file', size: 8 << 20 }), body);
  await new Promise((r) => setTimeout(r, 50));
  assert.ok(pushed < 2 << 20, `writer read ${pushed} bytes ahead of a reader that read nothing`);
  w.readable.resume();
  await done;
  await w.finish();
});

test('writer: abort signal destroys the output with DRAY_ABORTED', async () => {
  const ac = new AbortController();
  const w = createTarWriter({ signal: ac.signal });
  w.readable.on('error', () => {});
  ac.abort();
  await assert.rejects(w.add(hdr({ name: 'f', type: 'file' })), (e: unknown) =>
    isDrayError(e, 'DRAY_ABORTED'),
  );
});

test('reader: skips unread bodies, tolerates missing end blocks, drains trailing padding', async () => {
  const tar = await writeTar([
    [hdr({ name: 'a', type: 'file', size: 1000 }), Buffer.alloc(1000, 1)],
    [hdr({ name: 'b', type: 'file', size: 3 }), Buffer.from('bbb')],
  ]);
  const names: string[] = [];
  for await (const e of readTar(Readable.from(chunked(tar, 100)))) {
    names.push(e.header.name);
    if (e.header.name === 'b') assert.equal((await buffer(e.body)).toString(), 'bbb');
  }
  assert.deepEqual(names, ['a', 'b']);
  // no end blocks at all, or one
  assert.equal((await readAll(tar.subarray(0, tar.length - 1024))).length, 2);
  assert.equal((await readAll(tar.subarray(0, tar.length - 512))).length, 2);
  // record padding after the end blocks is consumed (a digest over the input sees all of it)
  let seen = 0;
  const padded = Buffer.concat([tar, Buffer.alloc(10240)]);
  const src = Readable.from(chunked(padded, 1000)).on('data', (c: Buffer) => {
    seen += c.length;
  });
  assert.equal((await readAll(src)).length, 2);
  assert.equal(seen, padded.length);
  // a partly read body is skipped too
  for await (const e of readTar(Readable.from([tar]))) {
    if (e.header.name === 'a') e.body.read(10);
  }
});

test('reader: breaking out early destroys the input', async () => {
  const tar = await writeTar([[hdr({ name: 'a', type: 'file' })], [hdr({ name: 'b', type: 'file' })]]);
  const src = Readable.from([tar]);
  for await (const _ of readTar(src)) break;
  assert.ok(src.destroyed);
});

test('reader: chunks() gives the body without a stream; onData sees every byte in order', async () => {
  const big = Buffer.alloc(5000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
  const tar = await writeTar([
    [hdr({ name: 'a', type: 'file', size: big.length }), big],
    [hdr({ name: 'd', type: 'directory' })],
    [hdr({ name: 'b', type: 'file', size: 3 }), Buffer.from('bbb')],
    [hdr({ name: 'c', type: 'file', size: 4 }), Buffer.from('cccc')],
  ]);
  const padded = Buffer.concat([tar, Buffer.alloc(1536)]);
  const seen: Buffer[] = [];
  const got = new Map<string, Buffer>();
  for await (const e of readTar(Readable.from(chunked(padded, 700)), { onData: (c) => seen.push(c) })) {
    if (e.header.name === 'c') continue; // unread: skipped
    const parts: Buffer[] = [];
    for await (const c of e.chunks()) parts.push(c);
    got.set(e.header.name, Buffer.concat(parts));
  }
  assert.deepEqual(got.get('a'), big);
  assert.equal(got.get('d')?.length, 0);
  assert.equal(got.get('b')?.toString(), 'bbb');
  assert.deepEqual(Buffer.concat(seen), padded);
  // a truncated body read through chunks() fails as the stream does
  await assert.rejects(
    async () => {
      for await (const e of readTar(Readable.from([tar.subarray(0, 2000)])))
        for await (const _ of e.chunks());
    },
    (e: unknown) =>
      isDrayError(e, 'DRAY_INVALID_ARCHIVE') && /"a" at offset 0: unexpected end/.test(String(e)),
  );
});

test('reader: names normalised, absolute and .. kept for safe unpack', () => {
  assert.equal(normalizeName('./a/b/'), 'a/b');
  assert.equal(normalizeName('.//a'), 'a');
  assert.equal(normalizeName('./'), '.');
  assert.equal(normalizeName('.'), '.');
  assert.equal(normalizeName('/etc/passwd'), '/etc/passwd');
  assert.equal(normalizeName('../../x/'), '../../x');
  assert.equal(normalizeName('./../x'), '../x');
  assert.equal(normalizeName('/'), '/');
});

test('reader: old-style directories, type 7, base-256 numbers, signed checksums, GNU atime', async () => {
  const blocks: Buffer[] = [];
  const one = (h: TarHeader, fn: (b: Buffer) => void, signed = false) => {
    const [b] = encodeHeader(h);
    blocks.push(patch(b!, fn, signed));
  };
  one(hdr({ name: 'olddir/', type: 'file' }), (b) => {
    b[156] = 0; // v7 regular file flag, directory by its trailing slash
  });
  one(hdr({ name: 'contig', type: 'file' }), (b) => {
    b[156] = 0x37;
  });
  one(hdr({ name: 'b256', type: 'file' }), (b) => {
    b.fill(0, 108, 116);
    b[108] = 0x80;
    b.writeUIntBE(0x1_0000_0000, 110, 6); // uid 2^32
    b.fill(0xff, 136, 148); // mtime -1
  });
  one(
    hdr({ name: 'sign', type: 'file' }),
    (b) => {
      b.write('\xe9\xe8', 0, 'latin1'); // latin1 bytes ≥ 0x80: signed and unsigned sums differ
    },
    true,
  );
  one(hdr({ name: 'gnu', type: 'file', mode: 0o100644 }), (b) => {
    b.write('ustar  \0', 257, 'latin1');
    b.fill(0, 345, 500);
    b.write('00000000144\0', 345, 'latin1'); // atime 100
    b.write('00000000310\0', 357, 'latin1'); // ctime 200
  });
  const got = await readAll(Buffer.concat([...blocks, Buffer.alloc(1024)]));
  assert.deepEqual(
    got.map((e) => [e.header.name, e.header.type]),
    [
      ['olddir', 'directory'],
      ['contig', 'file'],
      ['b256', 'file'],
      ['\ufffd\ufffdgn', 'file'],
      ['gnu', 'file'],
    ],
  );
  assert.equal(got[2]!.header.uid, 2 ** 32);
  assert.equal(got[2]!.header.mtime, -1);
  assert.equal(got[4]!.header.mode, 0o644);
  assert.equal(got[4]!.header.atime, 100);
  assert.equal(got[4]!.header.ctime, 200);
});

test('reader: pax global headers, empty values, LIBARCHIVE xattrs, other records', async () => {
  const paxBlock = (flag: string, records: string) => {
    const body = Buffer.from(records);
    const [b] = encodeHeader(hdr({ name: 'pax', type: 'file', size: body.length }));
    patch(b!, (x) => {
      x[156] = flag.charCodeAt(0);
    });
    const pad = Buffer.alloc((512 - (body.length % 512)) % 512);
    return Buffer.concat([b!, body, pad]);
  };
  const rec = (k: string, v: string) => {
    const base = Buffer.byteLength(k) + Buffer.byteLength(v) + 3;
    let n = base + String(base).length;
    if (String(n).length !== String(base).length) n = base + String(n).length;
    return `${n} ${k}=${v}\n`;
  };
  const file = (name: string) => encodeHeader(hdr({ name, type: 'file' }));
  const tar = Buffer.concat([
    paxBlock('g', rec('comment', 'global') + rec('uname', 'gl')),
    ...file('a'),
    paxBlock(
      'x',
      rec('path', 'renamed') +
        rec('uname', '') +
        rec('LIBARCHIVE.xattr.user.n%C3%BC', BIN.toString('base64')),
    ),
    ...file('b'),
    paxBlock('g', rec('comment', '')),
    ...file('c'),
    Buffer.alloc(1024),
  ]);
  const got = await readAll(tar);
  assert.equal(got[0]!.header.uname, 'gl');
  assert.deepEqual(got[0]!.header.pax, new Map([['comment', Buffer.from('global')]]));
  assert.equal(got[1]!.header.name, 'renamed');
  assert.equal(got[1]!.header.uname, undefined);
  assert.deepEqual(got[1]!.header.xattrs, new Map([['user.nü', BIN]]));
  assert.equal(got[2]!.header.pax, undefined);
  assert.equal(got[2]!.header.uname, 'gl');
});

test('reader: malformed archives → DRAY_INVALID_ARCHIVE naming the offset', async () => {
  const tar = await writeTar([
    [hdr({ name: 'a', type: 'file', size: 600 }), Buffer.alloc(600, 1)],
    [hdr({ name: 'b', type: 'file' })],
  ]);
  const bad = Buffer.from(tar);
  bad[0] = bad[0]! ^ 1;
  await rejectsInvalid(bad, /offset 0: checksum mismatch/);
  await rejectsInvalid(tar.subarray(0, 300), /unexpected end of archive in the header at offset 0/);
  await rejectsInvalid(tar.subarray(0, 800), /"a" at offset 0: unexpected end of archive/);
  await rejectsInvalid(tar.subarray(0, 800), /"a" at offset 0: unexpected end of archive/, false);
  await rejectsInvalid(
    tar.subarray(0, 1200),
    /"a" at offset 0: unexpected end of archive in its padding/,
    false,
  );
  const [neg] = encodeHeader(hdr({ name: 'n', type: 'file' }));
  patch(neg!, (b) => b.fill(0xff, 124, 136));
  await rejectsInvalid(neg!, /offset 0: negative size/);
  const [huge] = encodeHeader(hdr({ name: 'h', type: 'file' }));
  patch(huge!, (b) => b.write('77777777777\0', 124, 'latin1'));
  await rejectsInvalid(
    Buffer.concat([huge!, Buffer.alloc(4096)]),
    /"h" at offset 0: unexpected end of archive/,
  );
  const [octal] = encodeHeader(hdr({ name: 'o', type: 'file' }));
  patch(octal!, (b) => b.write('0000009', 100, 'latin1'));
  await rejectsInvalid(octal!, /malformed mode/);
  const [sparse] = encodeHeader(hdr({ name: 's', type: 'file' }));
  patch(sparse!, (b) => {
    b[156] = 0x53;
  });
  await rejectsInvalid(
    Buffer.concat([sparse!, Buffer.alloc(1024)]),
    /"s" at offset 0: unsupported: GNU sparse/,
  );
  const second = Buffer.from(tar);
  second[512 * 3] = second[512 * 3]! ^ 1; // header of "b" after a 600-byte body (2 blocks)
  await rejectsInvalid(second, /offset 1536: checksum mismatch/);
  const noSecondZero = Buffer.concat([
    tar.subarray(0, tar.length - 1024),
    Buffer.alloc(512),
    Buffer.alloc(512, 1),
  ]);
  await rejectsInvalid(noSecondZero, /second end-of-archive block/);
  const [pax] = encodeHeader(hdr({ name: 'p', type: 'file', size: 512 }));
  patch(pax!, (b) => {
    b[156] = 0x78;
  });
  await rejectsInvalid(
    Buffer.concat([pax!, Buffer.alloc(512, 0x41), Buffer.alloc(1024)]),
    /invalid pax header/,
  );
  await rejectsInvalid(pax!, /unexpected end of archive in the pax header/);
});

test('reader: abort signal → DRAY_ABORTED', async () => {
  const ac = new AbortController();
  const tar = await writeTar([[hdr({ name: 'a', type: 'file' })], [hdr({ name: 'b', type: 'file' })]]);
  await assert.rejects(
    async () => {
      for await (const _ of readTar(Readable.from([tar]), { signal: ac.signal })) ac.abort();
    },
    (e: unknown) => isDrayError(e, 'DRAY_ABORTED'),
  );
});

// ---- GNU tar interop -------------------------------------------------------------------------

const hasTar = spawnSync('tar', ['--version']).status === 0;
const hasPython = spawnSync('python3', ['-c', 'import os; os.setxattr']).status === 0;

function requireTool(t: { skip(msg: string): void }, ok: boolean, what: string): boolean {
  if (ok) return true;
  if (process.env.CI === 'true') assert.fail(`${what} is required under CI`);
  t.skip(`${what} not available`);
  return false;
}

function setxattr(path: string, name: string, value: Buffer): boolean {
  const r = spawnSync('python3', [
    '-c',
    'import os,sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), follow_symlinks=False)',
    path,
    name,
    value.toString('hex'),
  ]);
  return r.status === 0;
}

function getxattrs(path: string): Map<string, Buffer> {
  const out = execFileSync('python3', [
    '-c',
    'import os,sys,json; p=sys.argv[1]; print(json.dumps({n: os.getxattr(p,n,follow_symlinks=False).hex() for n in os.listxattr(p, follow_symlinks=False)}))',
    path,
  ]).toString();
  return new Map(
    Object.entries(JSON.parse(out) as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'hex')]),
  );
}

async function makeTree(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(join(tmpdir(), 'dray-tar-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const root = join(dir, 'root');
  await fs.mkdir(join(root, 'sub'), { recursive: true });
  await fs.writeFile(join(root, 'sub', 'file.txt'), 'hello\n');
  await fs.chmod(join(root, 'sub', 'file.txt'), 0o4750);
  await fs.writeFile(join(root, 'ünïcødé'), Buffer.alloc(1000, 0x61));
  await fs.link(join(root, 'sub', 'file.txt'), join(root, 'hardlink'));
  await fs.symlink('sub/file.txt', join(root, 'symlink'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  await fs.mkdir(join(root, 'deep', 'a'.repeat(120), 'b'.repeat(120)), { recursive: true });
  await fs.writeFile(join(root, 'deep', 'a'.repeat(120), 'b'.repeat(120), 'c'.repeat(60)), 'deep');
  await fs.symlink('t'.repeat(180), join(root, 'longlink'));
  for (const p of await walk(root)) await fs.lutimes(p, 1_600_000_000, 1_600_000_000);
  return dir;
}

async function walk(dir: string): Promise<string[]> {
  const out: string[] = [dir];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await walk(p)));
    else out.push(p);
  }
  return out;
}

async function checkAgainstDisk(entries: Entry[], root: string, o: { xattrs: boolean; names: boolean }) {
  const byName = new Map(entries.map((e) => [e.header.name, e]));
  const deepFile = `deep/${'a'.repeat(120)}/${'b'.repeat(120)}/${'c'.repeat(60)}`;
  const expected = ['.', 'sub', 'sub/file.txt', 'ünïcødé', 'symlink', 'fifo', 'hardlink'];
  if (o.names) expected.push(deepFile, 'longlink');
  for (const name of expected) {
    const e = byName.get(name);
    assert.ok(e, `missing ${name} in ${[...byName.keys()].join(', ')}`);
    const st = await fs.lstat(join(root, name));
    const h = e.header;
    if (h.type !== 'link') {
      assert.equal(h.mode, st.mode & 0o7777, `${name} mode`);
      assert.equal(h.mtime, Math.floor(st.mtimeMs / 1000), `${name} mtime`);
    }
    assert.equal(h.uid, st.uid);
    assert.equal(h.gid, st.gid);
    const type = st.isDirectory()
      ? 'directory'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isFIFO()
          ? 'fifo'
          : h.type === 'link'
            ? 'link'
            : 'file';
    assert.equal(h.type, type, name);
    if (type === 'file') {
      assert.equal(h.size, st.size);
      assert.deepEqual(e.data, await fs.readFile(join(root, name)));
    }
    if (type === 'symlink') assert.equal(h.linkname, await fs.readlink(join(root, name)));
    if (type === 'link') assert.ok(['sub/file.txt', 'hardlink'].includes(h.linkname!));
  }
  if (o.xattrs) {
    // whichever of the two names tar met first carries the data and the xattrs
    const file = [byName.get('sub/file.txt')!, byName.get('hardlink')!].find(
      (e) => e.header.type === 'file',
    )!;
    assert.deepEqual(file.header.xattrs?.get('user.bin'), BIN);
    assert.deepEqual(file.header.xattrs?.get('security.capability'), CAP);
  }
}

for (const format of ['pax', 'gnu', 'ustar'] as const) {
  test(`reads GNU tar --format=${format}`, async (t) => {
    if (!requireTool(t, hasTar, 'GNU tar')) return;
    const dir = await makeTree(t);
    const root = join(dir, 'root');
    const xattrs = format === 'pax' && hasPython && setxattr(join(root, 'sub', 'file.txt'), 'user.bin', BIN);
    if (xattrs) {
      assert.ok(setxattr(join(root, 'sub', 'file.txt'), 'security.capability', CAP));
      await fs.lutimes(join(root, 'sub', 'file.txt'), 1_600_000_000, 1_600_000_000);
    } else if (format === 'pax') requireTool(t, false, 'python3 with user xattrs on the temp fs');
    const args = ['-C', root, `--format=${format}`, '-cf', join(dir, 'x.tar')];
    if (xattrs) args.push('--xattrs', '--xattrs-include=*');
    if (format === 'ustar') args.push('--exclude=./deep', '--exclude=./longlink');
    execFileSync('tar', [...args, '.']);
    const entries = await readAll(await fs.readFile(join(dir, 'x.tar')), 333);
    await checkAgainstDisk(entries, root, { xattrs, names: format !== 'ustar' });
  });
}

test('GNU tar reads what the writer writes, xattrs included', async (t) => {
  if (!requireTool(t, hasTar, 'GNU tar')) return;
  const dir = await fs.mkdtemp(join(tmpdir(), 'dray-tarw-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const entries = allTypes().filter(([h]) => !h.type.endsWith('device') || process.getuid?.() === 0);
  const tar = await writeTar(entries);
  await fs.writeFile(join(dir, 'w.tar'), tar);
  const list = execFileSync('tar', ['-tf', join(dir, 'w.tar')])
    .toString()
    .split('\n')
    .filter(Boolean);
  assert.deepEqual(
    list.map((n) => normalizeName(n)),
    entries.map(([h]) => h.name),
  );
  const verbose = execFileSync('tar', ['-tvf', join(dir, 'w.tar'), '--numeric-owner', '--full-time'], {
    env: { ...process.env, TZ: 'UTC' },
  }).toString();
  assert.match(verbose, / 2514-05-30 \d\d:\d\d:\d\d future$/m);
  assert.match(verbose, / 1969-12-31 \d\d:\d\d:\d\d old$/m);
  assert.match(verbose, /2097152\/4000000000/);
  assert.match(verbose, /^c.* 1,3 .* dev\/null$/m);
  const out = join(dir, 'out');
  await fs.mkdir(out);
  const x = spawnSync('tar', [
    '--xattrs',
    '--xattrs-include=*',
    '--numeric-owner',
    '-C',
    out,
    '-xf',
    join(dir, 'w.tar'),
  ]);
  assert.equal(x.status, 0, x.stderr.toString());
  for (const [h, body] of entries) {
    const p = join(out, h.name);
    const st = await fs.lstat(p);
    if (h.type === 'file') assert.deepEqual(await fs.readFile(p), body ?? Buffer.alloc(0), h.name);
    if (h.type === 'symlink') assert.equal(await fs.readlink(p), h.linkname);
    if (h.type === 'link') assert.equal(st.ino, (await fs.lstat(join(out, h.linkname!))).ino);
    if (h.type !== 'symlink' && h.type !== 'link') {
      assert.equal(st.mode & 0o7777, h.mode, h.name);
      // GNU tar creates symlinks last (its delayed-link protection), which touches their
      // directory after its mtime was restored; so directories are not compared.
      // ext4 stops at 2446-05-10; the listing below checks the 2514 one.
      if (h.type !== 'directory' && h.mtime < 15_032_385_535) {
        assert.equal(Math.floor(st.mtimeMs / 1000), h.mtime, h.name);
      }
    }
    // a hard link shares its target's inode and owner
    if (process.getuid?.() === 0 && h.type !== 'link') assert.equal(st.uid, h.uid, h.name);
  }
  if (requireTool(t, hasPython, 'python3')) {
    const xs = getxattrs(join(out, 'usr/bin/ping'));
    assert.deepEqual(xs.get('user.bin'), BIN);
    assert.deepEqual(xs.get('user.empty'), Buffer.alloc(0));
    if (process.getuid?.() === 0) assert.deepEqual(xs.get('security.capability'), CAP);
  }
});

test('200 MB streams through writer → reader with flat memory', async (t) => {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const live = () => {
    gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.arrayBuffers;
  };
  const size = 200 * 1024 * 1024;
  const chunk = Buffer.alloc(1 << 20, 0x5a);
  const w = createTarWriter();
  const producer = (async () => {
    for (let i = 0; i < 2; i++) {
      let left = size / 2;
      const body = new Readable({
        read() {
          if (left === 0) return void this.push(null);
          left -= chunk.length;
          this.push(chunk);
        },
      });
      await w.add(hdr({ name: `big${i}`, type: 'file', size: size / 2 }), body);
    }
    await w.finish();
  })();
  live();
  const before = live();
  let peak = 0;
  let total = 0;
  let next = 16 << 20;
  const start = performance.now();
  for await (const e of readTar(w.readable)) {
    for await (const c of e.body) {
      total += (c as Buffer).length;
      if (total >= next) {
        next += 16 << 20;
        peak = Math.max(peak, live() - before);
      }
    }
  }
  await producer;
  const secs = (performance.now() - start) / 1000;
  assert.equal(total, size);
  assert.ok(peak < 32 * 2 ** 20, `live memory grew by ${(peak / 2 ** 20).toFixed(1)} MiB`);
  t.diagnostic(`writer→reader ${(size / 2 ** 20 / secs).toFixed(0)} MiB/s (with GC probes)`);
});
