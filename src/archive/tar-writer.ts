import { Readable } from 'node:stream';
import { abortError, DrayError } from '../errors.ts';
import type { TarEntryType, TarHeader } from './types.ts';
import { PAX_HEADER_KEYS } from './types.ts';

/**
 * Deterministic tar writer: ustar headers, with a pax extended header (`x`) only when a
 * field does not fit ustar (POSIX.1-2001 pax, as Go's archive/tar and GNU `--format=pax`).
 */

const BLOCK = 512;
const ZERO_BLOCKS = Buffer.alloc(2 * BLOCK);
const PADDING = Buffer.alloc(BLOCK);
/** Pieces smaller than this (headers, padding, small bodies) are copied into one staging buffer… */
const SMALL_PIECE = 16 * 1024;
/** …of this size, pushed when full, before a large piece, at the end, or when the loop goes idle. */
const STAGE_BYTES = 64 * 1024;
/** Largest value of an n-byte octal field with its terminating NUL. */
const MAX_OCTAL_8 = 0o7777777; // 2097151
const MAX_OCTAL_12 = 0o77777777777; // 8589934591

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  link: '1',
  symlink: '2',
  'character-device': '3',
  'block-device': '4',
  directory: '5',
  fifo: '6',
};

export interface TarWriterOptions {
  signal?: AbortSignal;
  /**
   * Keep sub-second mtimes and write atime/ctime (as pax records). Off by default: layers
   * are reproducible only when times are whole seconds and atime/ctime are left out.
   */
  preciseTimes?: boolean;
}

/** An entry's content: bytes, a stream, or chunks (e.g. a read entry's `chunks()`). */
export type TarBody = Buffer | Readable | AsyncIterable<Buffer>;

/**
 * Writes tar entries one at a time into `readable`, with backpressure: `add` resolves once the
 * entry's bytes are handed to the stream and the consumer is keeping up. Concurrent `add`
 * calls are queued in call order. Output depends only on the headers and bodies (no clock,
 * no randomness, pax records in a fixed order, xattrs sorted by name).
 *
 * Throws DRAY_INVALID_ARGUMENT (from `add`) when a body's length differs from `header.size`,
 * when a non-file has a size or body, or when a field cannot be encoded; the archive is then
 * broken and `readable` is destroyed with the same error. DRAY_ABORTED when the signal fires.
 */
export class TarWriter {
  /** The archive bytes. */
  readonly readable: Readable;
  #preciseTimes: boolean;
  #tail: Promise<void> = Promise.resolve();
  #wake: (() => void) | undefined;
  #stage: Buffer | undefined;
  #staged = 0;
  #idleFlush: NodeJS.Immediate | undefined;
  #error: Error | undefined;
  #finished = false;
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;

  constructor(o: TarWriterOptions = {}) {
    this.#preciseTimes = o.preciseTimes ?? false;
    this.readable = new Readable({
      highWaterMark: 64 * 1024,
      read: () => this.#resume(),
      destroy: (err, cb) => {
        this.#error ??= err ?? new DrayError('DRAY_ABORTED', 'tar writer: output stream closed');
        this.#resume();
        this.#cleanup();
        cb(err);
      },
    });
    this.#signal = o.signal;
    if (o.signal) {
      if (o.signal.aborted) this.readable.destroy(abortError(o.signal, 'writing tar archive'));
      else {
        this.#onAbort = () => this.readable.destroy(abortError(o.signal, 'writing tar archive'));
        o.signal.addEventListener('abort', this.#onAbort, { once: true });
      }
    }
  }

  /**
   * Appends one entry. `body` (files only) must supply exactly `header.size` bytes. For
   * directories the name is written with a trailing '/'.
   */
  add(header: TarHeader, body?: TarBody): Promise<void> {
    if (this.#finished) {
      return Promise.reject(new DrayError('DRAY_INVALID_ARGUMENT', 'tar writer: add after finish'));
    }
    const p = this.#tail.then(() => this.#add(header, body));
    this.#tail = p.catch(() => {});
    return p;
  }

  /** Writes the two end-of-archive blocks and ends `readable`. */
  finish(): Promise<void> {
    if (this.#finished) return this.#tail;
    this.#finished = true;
    const p = this.#tail.then(async () => {
      this.#check();
      await this.#push(ZERO_BLOCKS);
      this.#flushStage();
      this.readable.push(null);
      this.#cleanup();
    });
    this.#tail = p.catch(() => {});
    return p;
  }

  async #add(header: TarHeader, body: TarBody | undefined): Promise<void> {
    this.#check();
    const blocks = encodeHeader(header, this.#preciseTimes);
    const size = header.type === 'file' ? header.size : 0;
    // Mismatches known up front are refused before any byte is out: the archive stays usable.
    if ((body === undefined && size > 0) || (Buffer.isBuffer(body) && body.length !== size)) {
      throw badArg(
        `tar entry ${JSON.stringify(header.name)}: body is ${body?.length ?? 0} bytes but header.size is ${size}`,
      );
    }
    for (const b of blocks) {
      const wait = this.#push(b);
      if (wait) await wait;
    }
    let written = 0;
    try {
      if (Buffer.isBuffer(body)) {
        if (size > 0) await this.#push(body);
        written = size;
      } else if (body !== undefined) {
        for await (const c of body) {
          const chunk: Buffer = Buffer.isBuffer(c) ? c : Buffer.from(c as Uint8Array);
          if (written + chunk.length > size) {
            if (body instanceof Readable) body.destroy();
            throw badArg(`tar entry ${JSON.stringify(header.name)}: body is longer than header.size ${size}`);
          }
          written += chunk.length;
          if (chunk.length > 0) {
            const wait = this.#push(chunk);
            if (wait) await wait;
          }
        }
      }
      if (written !== size) {
        throw badArg(
          `tar entry ${JSON.stringify(header.name)}: body is ${written} bytes but header.size is ${size}`,
        );
      }
      const pad = (BLOCK - (size % BLOCK)) % BLOCK;
      if (pad > 0) {
        const wait = this.#push(PADDING.subarray(0, pad));
        if (wait) await wait;
      }
    } catch (err) {
      // Header (and maybe part of a body) is out: the archive cannot be repaired.
      if (!this.readable.destroyed) this.readable.destroy(err as Error);
      throw err;
    }
  }

  #check(): void {
    if (this.#error) throw this.#error;
    if (this.#signal?.aborted) throw abortError(this.#signal, 'writing tar archive');
  }

  /**
   * Hands bytes to the output. A tar of many small files is mostly 512-byte headers, padding
   * and small bodies: each its own push would cost the consumer one write call apiece, so
   * small pieces are copied into a staging buffer. Staged bytes are pushed when the stage
   * fills, before a large piece, at `finish`, and once the event loop turns with nothing
   * else added (a consumer never waits on bytes that sit staged while the producer is idle).
   */
  #push(b: Buffer): Promise<void> | undefined {
    this.#check();
    if (b.length < SMALL_PIECE) {
      const full = this.#staged + b.length > STAGE_BYTES && this.#flushStage();
      this.#stage ??= Buffer.allocUnsafe(STAGE_BYTES);
      b.copy(this.#stage, this.#staged);
      this.#staged += b.length;
      this.#idleFlush ??= setImmediate(() => {
        this.#idleFlush = undefined;
        if (!this.readable.destroyed) this.#flushStage();
      });
      return full ? this.#drained() : undefined;
    }
    this.#flushStage();
    if (!this.readable.push(b)) return this.#drained();
    return undefined;
  }

  /** Pushes what is staged; true when the output asks to wait (backpressure). */
  #flushStage(): boolean {
    if (this.#staged === 0) return false;
    const out = (this.#stage as Buffer).subarray(0, this.#staged);
    this.#stage = undefined;
    this.#staged = 0;
    return !this.readable.push(out);
  }

  async #drained(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
    });
    this.#check();
  }

  #resume(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #cleanup(): void {
    if (this.#idleFlush) clearImmediate(this.#idleFlush);
    this.#idleFlush = undefined;
    if (this.#onAbort) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#onAbort = undefined;
  }
}

/** Creates a {@link TarWriter}. No I/O until the output is read. */
export function createTarWriter(o: TarWriterOptions = {}): TarWriter {
  return new TarWriter(o);
}

/**
 * Encodes the header blocks for one entry: an optional pax `x` header (its block plus
 * payload) followed by the ustar block. Exported for tests and for writers that assemble
 * archives by hand. Throws DRAY_INVALID_ARGUMENT for fields no tar format can carry.
 */
export function encodeHeader(h: TarHeader, preciseTimes = false): Buffer[] {
  const what = `tar entry ${JSON.stringify(h.name)}`;
  const flag = TYPEFLAG[h.type];
  if (flag === undefined) throw badArg(`${what}: unknown type ${JSON.stringify(h.type)}`);
  if (h.name === '') throw badArg(`${what}: empty name`);
  if (h.name.includes('\0')) throw badArg(`${what}: name contains NUL`);
  const size = h.size;
  if (!Number.isSafeInteger(size) || size < 0) throw badArg(`${what}: invalid size ${size}`);
  if (h.type !== 'file' && size !== 0) throw badArg(`${what}: a ${h.type} must have size 0`);
  for (const [k, v] of [
    ['mode', h.mode],
    ['uid', h.uid],
    ['gid', h.gid],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw badArg(`${what}: invalid ${k} ${v}`);
  }
  if (!Number.isFinite(h.mtime)) throw badArg(`${what}: invalid mtime ${h.mtime}`);

  // Records are collected in this fixed order, then xattrs and other pax records sorted by key.
  const records: Array<[string, Buffer]> = [];
  const rec = (k: string, v: string | Buffer) =>
    records.push([k, typeof v === 'string' ? Buffer.from(v) : v]);

  const name = h.type === 'directory' && !h.name.endsWith('/') ? `${h.name}/` : h.name;
  let nameField = name;
  let prefixField = '';
  if (!fitsUstar(name, 100)) {
    const split = splitUstarPath(name);
    if (split) [prefixField, nameField] = split;
    else {
      rec('path', name);
      nameField = toAscii(name).slice(0, 100);
    }
  }
  let linkField = '';
  if (h.type === 'link' || h.type === 'symlink') {
    const link = h.linkname ?? '';
    if (link === '') throw badArg(`${what}: a ${h.type} needs a linkname`);
    if (link.includes('\0')) throw badArg(`${what}: linkname contains NUL`);
    linkField = link;
    if (!fitsUstar(link, 100)) {
      rec('linkpath', link);
      linkField = toAscii(link).slice(0, 100);
    }
  }
  if (size > MAX_OCTAL_12) rec('size', String(size));
  if (h.uid > MAX_OCTAL_8) rec('uid', String(h.uid));
  if (h.gid > MAX_OCTAL_8) rec('gid', String(h.gid));
  let unameField = h.uname ?? '';
  let gnameField = h.gname ?? '';
  if (!fitsUstar(unameField, 32)) {
    rec('uname', unameField);
    unameField = toAscii(unameField).slice(0, 32);
  }
  if (!fitsUstar(gnameField, 32)) {
    rec('gname', gnameField);
    gnameField = toAscii(gnameField).slice(0, 32);
  }
  const mtimeSec = Math.floor(h.mtime);
  if (preciseTimes && mtimeSec !== h.mtime) rec('mtime', formatPaxTime(h.mtime));
  else if (mtimeSec < 0 || mtimeSec > MAX_OCTAL_12) rec('mtime', String(mtimeSec));
  if (preciseTimes && h.atime !== undefined) rec('atime', formatPaxTime(h.atime));
  if (preciseTimes && h.ctime !== undefined) rec('ctime', formatPaxTime(h.ctime));

  if (h.xattrs && h.xattrs.size > 0) {
    const keys = [...h.xattrs.keys()].sort(byBytes);
    for (const k of keys) {
      if (k === '' || k.includes('=') || k.includes('\0'))
        throw badArg(`${what}: invalid xattr name ${JSON.stringify(k)}`);
      rec(`SCHILY.xattr.${k}`, h.xattrs.get(k)!);
    }
  }
  if (h.pax && h.pax.size > 0) {
    const keys = [...h.pax.keys()].sort(byBytes);
    for (const k of keys) {
      if (PAX_HEADER_KEYS.has(k) || k.startsWith('SCHILY.xattr.')) {
        throw badArg(
          `${what}: pax record ${JSON.stringify(k)} is derived from the header; set the field instead`,
        );
      }
      if (k === '' || k.includes('=') || k.includes('\0'))
        throw badArg(`${what}: invalid pax key ${JSON.stringify(k)}`);
      rec(k, h.pax.get(k)!);
    }
  }

  let devmajor = 0;
  let devminor = 0;
  if (h.type === 'character-device' || h.type === 'block-device') {
    devmajor = h.devmajor ?? 0;
    devminor = h.devminor ?? 0;
    for (const [k, v] of [
      ['devmajor', devmajor],
      ['devminor', devminor],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 0 || v > MAX_OCTAL_8)
        throw badArg(`${what}: ${k} ${v} cannot be encoded`);
    }
  }

  const out: Buffer[] = [];
  if (records.length > 0) {
    const payload = encodePax(records);
    const paxName = toAscii(paxHeaderName(name)).slice(0, 100);
    out.push(
      ustarBlock({
        name: paxName,
        prefix: '',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: payload.length,
        mtime: 0,
        flag: 'x',
        link: '',
        uname: '',
        gname: '',
        devmajor: 0,
        devminor: 0,
      }),
    );
    const pad = (BLOCK - (payload.length % BLOCK)) % BLOCK;
    out.push(pad > 0 ? Buffer.concat([payload, PADDING.subarray(0, pad)]) : payload);
  }
  out.push(
    ustarBlock({
      name: nameField,
      prefix: prefixField,
      mode: h.mode & 0o7777,
      uid: h.uid > MAX_OCTAL_8 ? 0 : h.uid,
      gid: h.gid > MAX_OCTAL_8 ? 0 : h.gid,
      size: size > MAX_OCTAL_12 ? 0 : size,
      mtime: mtimeSec < 0 || mtimeSec > MAX_OCTAL_12 ? 0 : mtimeSec,
      flag,
      link: linkField,
      uname: unameField,
      gname: gnameField,
      devmajor,
      devminor,
    }),
  );
  return out;
}

interface UstarFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  flag: string;
  link: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
}

function ustarBlock(f: UstarFields): Buffer {
  const b = Buffer.alloc(BLOCK);
  b.write(f.name, 0, 100, 'latin1');
  octal(b, 100, 8, f.mode);
  octal(b, 108, 8, f.uid);
  octal(b, 116, 8, f.gid);
  octal(b, 124, 12, f.size);
  octal(b, 136, 12, f.mtime);
  b.write(f.flag, 156, 1, 'latin1');
  b.write(f.link, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  b.write(f.uname, 265, 32, 'latin1');
  b.write(f.gname, 297, 32, 'latin1');
  octal(b, 329, 8, f.devmajor);
  octal(b, 337, 8, f.devminor);
  b.write(f.prefix, 345, 155, 'latin1');
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  // "%06o\0 " as GNU tar and Go write it.
  b.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return b;
}

function octal(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0'), off, len - 1, 'latin1');
}

/** `"%d %s=%s\n"` where %d counts the whole record, its own digits included. */
function encodePax(records: Array<[string, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of records) {
    const key = Buffer.from(k);
    const base = key.length + v.length + 3; // ' ', '=', '\n'
    let len = base + String(base).length;
    if (String(len).length !== String(base).length) len = base + String(len).length;
    parts.push(Buffer.from(`${len} `), key, Buffer.from('='), v, Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** Go's archive/tar layout, no pid: the pax header of `a/b` is `a/PaxHeaders.0/b`. */
function paxHeaderName(name: string): string {
  const trimmed = name.endsWith('/') ? name.slice(0, -1) : name;
  const i = trimmed.lastIndexOf('/');
  const dir = i === -1 ? '' : trimmed.slice(0, i + 1);
  return `${dir}PaxHeaders.0/${trimmed.slice(i + 1)}`;
}

function fitsUstar(s: string, len: number): boolean {
  return s.length <= len && isAscii(s);
}

function isAscii(s: string): boolean {
  return /^[\x01-\x7f]*$/.test(s);
}

function toAscii(s: string): string {
  return isAscii(s) ? s : s.replace(/[^\x01-\x7f]/g, '_');
}

/** ustar's prefix/name split: prefix ≤ 155 bytes, name ≤ 100, split at a '/'. */
function splitUstarPath(name: string): [string, string] | undefined {
  if (!isAscii(name) || name.length > 256) return undefined;
  let length = name.length;
  if (length > 156) length = 156;
  else if (name.endsWith('/')) length--;
  const i = name.lastIndexOf('/', length - 1);
  if (i <= 0) return undefined;
  const nlen = name.length - i - 1;
  if (nlen === 0 || nlen > 100 || i > 155) return undefined;
  return [name.slice(0, i), name.slice(i + 1)];
}

/** Seconds with up to nine fractional digits, no exponent; the sign covers the whole value. */
function formatPaxTime(t: number): string {
  if (!Number.isFinite(t)) throw badArg(`invalid time ${t}`);
  const neg = t < 0;
  const a = Math.abs(t);
  let sec = Math.floor(a);
  let ns = Math.round((a - sec) * 1e9);
  if (ns >= 1e9) {
    sec++;
    ns -= 1e9;
  }
  const frac = ns === 0 ? '' : `.${String(ns).padStart(9, '0').replace(/0+$/, '')}`;
  return `${neg && (sec !== 0 || ns !== 0) ? '-' : ''}${sec}${frac}`;
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function badArg(message: string): DrayError {
  return new DrayError('DRAY_INVALID_ARGUMENT', message);
}
