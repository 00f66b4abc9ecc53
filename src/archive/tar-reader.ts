import { Readable } from 'node:stream';
import { abortError, DrayError } from '../errors.ts';
import type { RunOptions } from '../progress/index.ts';
import type { TarEntry, TarEntryType, TarHeader } from './types.ts';
import { PAX_HEADER_KEYS } from './types.ts';

/**
 * Streaming tar reader: ustar, GNU (`L`/`K` long names, base-256 numbers, GNU atime/ctime),
 * POSIX pax (`x` and `g` headers) and v7 archives, in the way GNU tar and Go's archive/tar
 * (which containerd and moby build on) read them.
 */

const BLOCK = 512;
/** Upper bound for one pax or GNU long-name payload (Go's archive/tar uses the same 1 MiB). */
const MAX_SPECIAL = 1024 * 1024;
const EMPTY = Buffer.alloc(0);
const EMPTY_RECORDS: ReadonlyMap<string, Buffer> = new Map();

const SCHILY_XATTR = 'SCHILY.xattr.';
const LIBARCHIVE_XATTR = 'LIBARCHIVE.xattr.';

export interface ReadTarOptions extends RunOptions {
  /**
   * Sees every byte of the archive stream, in order, as it is read (for a digest or a byte
   * count of the whole tar without another stream stage). Must not keep or change the chunk.
   */
  onData?: (chunk: Buffer) => void;
}

/**
 * Reads a tar stream entry by entry. Does I/O on `stream` only (never buffers a body): each
 * entry's `body` is a Readable over the archive bytes; when the consumer asks for the next
 * entry, whatever it left unread is skipped and the old body is destroyed. After the end
 * blocks the rest of the input (record padding) is drained, so a digest computed on the
 * input stream covers the whole blob. Breaking out of the loop early destroys `stream`.
 *
 * Names: `header.name` is the archive's name with leading `./` prefixes and trailing `/`
 * removed (`./` itself becomes `.`). A leading `/` and `..` segments are kept as written so
 * that safe unpack can refuse or confine them; hard-link targets get the same treatment,
 * symlink targets are verbatim. Names are decoded as UTF-8.
 *
 * Hard links, symlinks, devices, directories and fifos carry no data (the size field is
 * ignored for them, as Go's archive/tar does) and report `size: 0`. Type '7' (contiguous)
 * reads as a file, a type '0' entry whose name ends in '/' as a directory (pre-POSIX tars).
 *
 * Throws (from the iterator) DRAY_INVALID_ARCHIVE for a bad checksum, a malformed number or
 * pax record, an unsupported entry type (GNU sparse, multi-volume) and a truncated archive
 * ("unexpected end of archive"); messages name the entry and byte offset. DRAY_ABORTED when
 * `o.signal` fires. Errors of `stream` itself pass through.
 */
export async function* readTar(
  stream: Readable,
  o: ReadTarOptions = {},
): AsyncGenerator<TarEntry, void, void> {
  const signal = o.signal;
  if (signal?.aborted) {
    stream.destroy();
    throw abortError(signal, 'reading tar archive');
  }
  const onAbort = () => stream.destroy(abortError(signal, 'reading tar archive'));
  signal?.addEventListener('abort', onAbort, { once: true });
  const src = new Source(stream, o.onData);
  let finished = false;
  const globals = new Map<string, Buffer>();
  try {
    for (;;) {
      const entry = await readEntry(src, globals);
      if (!entry) break;
      const { header, dataSize, offset } = entry;
      const body = new EntryBody(src, dataSize, header.name, offset);
      yield body.entry(header);
      if (signal?.aborted) throw abortError(signal, 'reading tar archive');
      await body.finish();
    }
    // Past the end-of-archive marker: drain record padding so upstream digests see every byte.
    while ((await src.take(1 << 20)) !== null) {}
    finished = true;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!finished) stream.destroy();
  }
}

interface RawEntry {
  header: TarHeader;
  /** Bytes of data that follow the header in the archive (before padding). */
  dataSize: number;
  /** Offset of the entry's first header block (pax/GNU headers included). */
  offset: number;
}

/** Reads headers (pax and GNU special ones included) up to the next real entry; null at the end. */
async function readEntry(src: Source, globals: Map<string, Buffer>): Promise<RawEntry | null> {
  const start = src.offset;
  let local: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const at = src.offset;
    const block = await src.exact(BLOCK);
    if (block === null) {
      if (at !== start)
        throw invalid(`unexpected end of archive after the extended header at offset ${start}`);
      return null; // EOF on a block boundary: an archive without end blocks, as Go and GNU tar accept
    }
    if (block.length < BLOCK) throw invalid(`unexpected end of archive in the header at offset ${at}`);
    if (isZero(block)) {
      if (at !== start)
        throw invalid(`unexpected end-of-archive block at offset ${at} after an extended header`);
      const second = await src.exact(BLOCK);
      if (second === null) return null;
      if (second.length < BLOCK || !isZero(second)) {
        throw invalid(`invalid tar header at offset ${at + BLOCK}: expected the second end-of-archive block`);
      }
      return null;
    }
    const h = parseHeaderBlock(block, at);
    const flag = h.typeflag;
    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      const payload = await readSpecial(src, h.size, at, flag);
      if (flag === 'x') {
        local ??= new Map();
        for (const [k, v] of parsePax(payload, at)) local.set(k, v);
      } else if (flag === 'g') {
        for (const [k, v] of parsePax(payload, at)) {
          // POSIX: an empty global value deletes the global record.
          if (v.length === 0) globals.delete(k);
          else globals.set(k, v);
        }
      } else {
        const end = payload.indexOf(0);
        const s = payload.subarray(0, end === -1 ? payload.length : end).toString('utf8');
        if (flag === 'L') longName = s;
        else longLink = s;
      }
      continue;
    }
    return buildEntry(h, start, at, globals, local, longName, longLink);
  }
}

interface RawHeader {
  typeflag: string;
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  uname: string;
  gname: string;
  devmajor: number;
  devminor: number;
  atime?: number;
  ctime?: number;
}

/** Decodes one 512-byte header: checksum (unsigned or signed sum), magic, fields. */
function parseHeaderBlock(b: Buffer, at: number): RawHeader {
  const stored = parseOctalField(b, 148, 8, 'checksum', at);
  // The checksum field itself counts as eight spaces.
  let unsigned = 8 * 0x20;
  for (let i = 0; i < 148; i++) unsigned += b[i]!;
  for (let i = 156; i < BLOCK; i++) unsigned += b[i]!;
  if (stored !== unsigned) {
    // Some old tars summed signed bytes: accept that sum too.
    let signed = 8 * 0x20;
    for (let i = 0; i < BLOCK; i++) {
      if (i >= 148 && i < 156) continue;
      const c = b[i]!;
      signed += c > 127 ? c - 256 : c;
    }
    if (stored !== signed) throw invalid(`invalid tar header at offset ${at}: checksum mismatch`);
  }
  const magic = b.toString('latin1', 257, 265);
  const isUstar = magic.startsWith('ustar\0');
  const isGnu = magic === 'ustar  \0';
  let name = cstring(b, 0, 100);
  if (isUstar) {
    // star puts atime/ctime after a shorter prefix and marks it with "tar\0" at 508.
    const isStar = b.toString('latin1', 508, 512) === 'tar\0';
    const prefix = cstring(b, 345, isStar ? 131 : 155);
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  const h: RawHeader = {
    typeflag: b[156] === 0 ? '0' : String.fromCharCode(b[156]!),
    name,
    mode: parseNumber(b, 100, 8, 'mode', at),
    uid: parseNumber(b, 108, 8, 'uid', at),
    gid: parseNumber(b, 116, 8, 'gid', at),
    size: parseNumber(b, 124, 12, 'size', at),
    mtime: parseNumber(b, 136, 12, 'mtime', at),
    linkname: cstring(b, 157, 100),
    uname: isUstar || isGnu ? cstring(b, 265, 32) : '',
    gname: isUstar || isGnu ? cstring(b, 297, 32) : '',
    devmajor: isUstar || isGnu ? parseNumber(b, 329, 8, 'devmajor', at) : 0,
    devminor: isUstar || isGnu ? parseNumber(b, 337, 8, 'devminor', at) : 0,
  };
  if (isGnu) {
    // GNU keeps atime/ctime where ustar has its prefix (written by --incremental / atime-preserve).
    if (b[345] !== 0) h.atime = parseNumber(b, 345, 12, 'atime', at);
    if (b[357] !== 0) h.ctime = parseNumber(b, 357, 12, 'ctime', at);
  }
  if (h.size < 0) throw invalid(`invalid tar header at offset ${at}: negative size`);
  return h;
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '7': 'file',
  '1': 'link',
  '2': 'symlink',
  '3': 'character-device',
  '4': 'block-device',
  '5': 'directory',
  '6': 'fifo',
};

function buildEntry(
  h: RawHeader,
  start: number,
  at: number,
  globals: Map<string, Buffer>,
  local: Map<string, Buffer> | undefined,
  longName: string | undefined,
  longLink: string | undefined,
): RawEntry {
  // Merge pax records: globals, then the entry's own (an empty local value unsets a standard key).
  // Most entries have no pax records at all: no map to copy then.
  const records = globals.size === 0 && !local ? (EMPTY_RECORDS as Map<string, Buffer>) : new Map(globals);
  if (local) {
    for (const [k, v] of local) {
      if (v.length === 0 && PAX_HEADER_KEYS.has(k)) records.delete(k);
      else records.set(k, v);
    }
  }
  let rawName = h.name;
  let rawLink = h.linkname;
  let size = h.size;
  let { uid, gid, mtime } = h;
  let uname = h.uname;
  let gname = h.gname;
  let atime = h.atime;
  let ctime = h.ctime;
  let xattrs: Map<string, Buffer> | undefined;
  let pax: Map<string, Buffer> | undefined;
  const where = () => `tar entry ${JSON.stringify(rawName)} at offset ${start}`;
  for (const [k, v] of records) {
    const s = () => v.toString('utf8');
    switch (k) {
      case 'path':
        rawName = s();
        break;
      case 'linkpath':
        rawLink = s();
        break;
      case 'size':
        size = paxInteger(s(), k, where);
        break;
      case 'uid':
        uid = paxInteger(s(), k, where);
        break;
      case 'gid':
        gid = paxInteger(s(), k, where);
        break;
      case 'uname':
        uname = s();
        break;
      case 'gname':
        gname = s();
        break;
      case 'mtime':
        mtime = paxTime(s(), k, where);
        break;
      case 'atime':
        atime = paxTime(s(), k, where);
        break;
      case 'ctime':
        ctime = paxTime(s(), k, where);
        break;
      default:
        if (k.startsWith(SCHILY_XATTR)) {
          xattrs ??= new Map();
          xattrs.set(k.slice(SCHILY_XATTR.length), v);
        } else if (k.startsWith(LIBARCHIVE_XATTR)) {
          // libarchive: name percent-encoded, value base64.
          let n = k.slice(LIBARCHIVE_XATTR.length);
          try {
            n = decodeURIComponent(n);
          } catch {}
          xattrs ??= new Map();
          if (!xattrs.has(n)) xattrs.set(n, Buffer.from(v.toString('latin1'), 'base64'));
        } else if (k.startsWith('GNU.sparse.')) {
          throw invalid(`${where()}: unsupported: GNU sparse file (pax ${k})`);
        } else {
          pax ??= new Map();
          pax.set(k, v);
        }
    }
  }
  if (longName !== undefined) rawName = longName;
  if (longLink !== undefined) rawLink = longLink;

  let type = TYPES[h.typeflag];
  if (type === undefined) {
    const what =
      h.typeflag === 'S'
        ? 'GNU sparse file'
        : h.typeflag === 'M'
          ? 'GNU multi-volume continuation'
          : h.typeflag === 'V'
            ? 'GNU volume header'
            : `entry type ${JSON.stringify(h.typeflag)}`;
    throw invalid(`${where()}: unsupported: ${what}`);
  }
  if (type === 'file' && h.typeflag === '0' && rawName.endsWith('/')) type = 'directory';
  const dataSize = type === 'file' ? size : 0;
  const header: TarHeader = {
    name: normalizeName(rawName),
    type,
    mode: h.mode & 0o7777,
    uid,
    gid,
    size: dataSize,
    mtime,
  };
  if (uname !== '') header.uname = uname;
  if (gname !== '') header.gname = gname;
  if (atime !== undefined) header.atime = atime;
  if (ctime !== undefined) header.ctime = ctime;
  if (type === 'link') header.linkname = normalizeName(rawLink);
  else if (type === 'symlink') header.linkname = rawLink;
  if (type === 'character-device' || type === 'block-device') {
    header.devmajor = h.devmajor;
    header.devminor = h.devminor;
  }
  if (xattrs) header.xattrs = xattrs;
  if (pax) header.pax = pax;
  if (!Number.isSafeInteger(dataSize) || dataSize < 0) {
    throw invalid(`${where()}: invalid size ${dataSize}`);
  }
  void at;
  return { header, dataSize, offset: start };
}

/**
 * `./a/b/` → `a/b`, `./` → `.`, `/abs` and `../x` unchanged (safe unpack must see them).
 * Only leading `./` prefixes and trailing slashes go; nothing else is rewritten.
 */
export function normalizeName(name: string): string {
  let n = name.replace(/^(?:\.\/+)+/, '');
  if (n === '' && name !== '') return '.';
  while (n.length > 1 && n.endsWith('/')) n = n.slice(0, -1);
  return n;
}

async function readSpecial(src: Source, size: number, at: number, flag: string): Promise<Buffer> {
  const what = flag === 'x' || flag === 'g' ? 'pax header' : 'GNU long name';
  if (size > MAX_SPECIAL) throw invalid(`${what} at offset ${at} too large: ${size} bytes`);
  const payload = size === 0 ? EMPTY : await src.exact(size);
  if (payload === null || payload.length < size)
    throw invalid(`unexpected end of archive in the ${what} at offset ${at}`);
  const pad = padding(size);
  if (pad > 0 && (await src.skip(pad)) < pad)
    throw invalid(`unexpected end of archive in the ${what} at offset ${at}`);
  return Buffer.from(payload); // copy: it outlives the source chunk
}

/** Parses `"%d %s=%s\n"` records byte-wise, so binary values stay intact. */
function parsePax(buf: Buffer, at: number): Array<[string, Buffer]> {
  const out: Array<[string, Buffer]> = [];
  let pos = 0;
  while (pos < buf.length) {
    if (buf[pos] === 0) break; // some writers NUL-pad the payload
    const sp = buf.indexOf(0x20, pos);
    const lenText = sp === -1 ? '' : buf.toString('latin1', pos, sp);
    if (!/^[1-9]\d{0,8}$/.test(lenText))
      throw invalid(`invalid pax header at offset ${at}: bad record length`);
    const len = Number(lenText);
    const end = pos + len;
    if (end > buf.length || buf[end - 1] !== 0x0a) {
      throw invalid(`invalid pax header at offset ${at}: record overruns or lacks a newline`);
    }
    const eq = buf.indexOf(0x3d, sp + 1);
    if (eq === -1 || eq >= end - 1 || eq === sp + 1) {
      throw invalid(`invalid pax header at offset ${at}: record without key=value`);
    }
    out.push([buf.toString('utf8', sp + 1, eq), Buffer.from(buf.subarray(eq + 1, end - 1))]);
    pos = end;
  }
  return out;
}

function paxInteger(s: string, key: string, where: () => string): number {
  if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) {
    throw invalid(`${where()}: invalid pax ${key} ${JSON.stringify(s)}`);
  }
  return Number(s);
}

function paxTime(s: string, key: string, where: () => string): number {
  if (!/^-?\d+(?:\.\d+)?$/.test(s)) throw invalid(`${where()}: invalid pax ${key} ${JSON.stringify(s)}`);
  const n = Number(s);
  if (!Number.isFinite(n)) throw invalid(`${where()}: invalid pax ${key} ${JSON.stringify(s)}`);
  return n;
}

function cstring(b: Buffer, off: number, len: number): string {
  let end = b.indexOf(0, off);
  if (end === -1 || end > off + len) end = off + len;
  return b.toString('utf8', off, end);
}

/** Octal (space/NUL padded) or GNU base-256 (high bit set; 0xff-led = negative). */
function parseNumber(b: Buffer, off: number, len: number, field: string, at: number): number {
  const first = b[off]!;
  if (first & 0x80) {
    const neg = (first & 0x40) !== 0;
    let x = 0n;
    for (let i = 0; i < len; i++) {
      let c = b[off + i]!;
      if (neg) c ^= 0xff;
      if (i === 0) c &= 0x7f;
      x = (x << 8n) | BigInt(c);
    }
    const v = neg ? -(x + 1n) : x;
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw invalid(`invalid tar header at offset ${at}: ${field} out of range`);
    }
    return Number(v);
  }
  return parseOctalField(b, off, len, field, at);
}

function parseOctalField(b: Buffer, off: number, len: number, field: string, at: number): number {
  let s = off;
  let e = off + len;
  while (s < e && (b[s] === 0x20 || b[s] === 0)) s++;
  // the field ends at the first NUL or space after the digits
  let i = s;
  while (i < e && b[i] !== 0 && b[i] !== 0x20) i++;
  for (let j = i; j < e; j++) {
    if (b[j] !== 0 && b[j] !== 0x20)
      throw invalid(`invalid tar header at offset ${at}: malformed ${field} field`);
  }
  e = i;
  let v = 0;
  for (let j = s; j < e; j++) {
    const c = b[j]! - 0x30;
    if (c < 0 || c > 7) throw invalid(`invalid tar header at offset ${at}: malformed ${field} field`);
    v = v * 8 + c;
  }
  if (!Number.isSafeInteger(v)) throw invalid(`invalid tar header at offset ${at}: ${field} out of range`);
  return v;
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

function invalid(message: string, cause?: unknown): DrayError {
  return new DrayError('DRAY_INVALID_ARCHIVE', message, {
    cause,
    hint: 'the archive is corrupt, truncated or not a tar file',
  });
}

/** A TarEntry as `readTar` yields it (a class: one shape for every entry, cheap to make). */
class ReadEntry implements TarEntry {
  readonly header: TarHeader;
  readonly #data: EntryBody;

  constructor(header: TarHeader, data: EntryBody) {
    this.header = header;
    this.#data = data;
  }

  get body(): Readable {
    return this.#data.body;
  }

  chunks(): AsyncIterable<Buffer> {
    return this.#data.chunks();
  }
}

/**
 * One entry's data, read either as chunks straight from the archive source or through a
 * Readable made on first use (most consumers of a layer of small files never need one).
 */
class EntryBody {
  #stream: Readable | undefined;
  #src: Source;
  #remaining: number;
  #pad: number;
  #inflight: Promise<unknown> | undefined;
  #detached = false;
  #error: DrayError | undefined;
  #name: string;
  #offset: number;

  constructor(src: Source, size: number, name: string, offset: number) {
    this.#src = src;
    this.#remaining = size;
    this.#pad = padding(size);
    this.#name = name;
    this.#offset = offset;
  }

  /** The entry handed to the consumer: `body` and `chunks()` both read from here. */
  entry(header: TarHeader): TarEntry {
    return new ReadEntry(header, this);
  }

  get body(): Readable {
    return this.#readable();
  }

  chunks(): AsyncIterable<Buffer> {
    return this.#chunks();
  }

  #readable(): Readable {
    if (this.#stream) return this.#stream;
    const stream = new Readable({ read: () => this.#pull() });
    this.#stream = stream;
    // The iterator rethrows body errors on the next entry; an unhandled 'error' must not crash
    // a consumer that merely resumed the body.
    stream.on('error', () => {});
    if (this.#remaining === 0) stream.push(null);
    return stream;
  }

  /** Next slice of the body, null when it is all read; throws for a truncated archive. */
  async #next(): Promise<Buffer | null> {
    if (this.#detached || this.#remaining === 0) return null;
    const p = this.#src.take(this.#remaining);
    this.#inflight = p;
    let chunk: Buffer | null;
    try {
      chunk = await p;
    } catch (err) {
      throw this.#fail(err);
    } finally {
      this.#inflight = undefined;
    }
    if (chunk === null) throw this.#fail(this.#truncated());
    this.#remaining -= chunk.length;
    return chunk;
  }

  #chunks(): AsyncIterable<Buffer> {
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<Buffer, undefined>> => {
          const chunk = await this.#next();
          return chunk === null ? { done: true, value: undefined } : { done: false, value: chunk };
        },
      }),
    };
  }

  #pull(): void {
    if (this.#inflight || this.#detached || this.#remaining === 0) return;
    this.#next().then(
      (chunk) => {
        const stream = this.#stream as Readable;
        if (chunk === null || this.#detached) return;
        stream.push(chunk);
        if (this.#remaining === 0) stream.push(null);
      },
      () => {},
    );
  }

  #fail(err: unknown): DrayError {
    const e =
      err instanceof DrayError ? err : invalid(`tar entry ${JSON.stringify(this.#name)}: ${err}`, err);
    this.#error ??= e;
    this.#stream?.destroy(e);
    return e;
  }

  #truncated(): DrayError {
    return invalid(
      `tar entry ${JSON.stringify(this.#name)} at offset ${this.#offset}: unexpected end of archive in its data (${this.#remaining} bytes missing at offset ${this.#src.offset})`,
    );
  }

  /** Skips what the consumer left unread, plus the block padding. */
  async finish(): Promise<void> {
    if (this.#inflight) await this.#inflight.catch(() => {});
    this.#detached = true;
    if (this.#error) throw this.#error;
    if (this.#remaining > 0) {
      const want = this.#remaining;
      const got = await this.#src.skip(want);
      this.#remaining -= got;
      if (got < want) {
        const e = this.#truncated();
        if (this.#stream && !this.#stream.destroyed) this.#stream.destroy(e);
        throw e;
      }
      if (this.#stream && !this.#stream.readableEnded) this.#stream.destroy();
    }
    if (this.#pad > 0) {
      const got = await this.#src.skip(this.#pad);
      if (got < this.#pad) {
        throw invalid(
          `tar entry ${JSON.stringify(this.#name)} at offset ${this.#offset}: unexpected end of archive in its padding`,
        );
      }
    }
  }
}

/** Byte source over a Readable with an exact offset; hands out zero-copy slices of its chunks. */
class Source {
  offset = 0;
  #it: AsyncIterator<unknown>;
  #chunk: Buffer = EMPTY;
  #eof = false;
  #onData: ((chunk: Buffer) => void) | undefined;

  constructor(stream: Readable, onData?: (chunk: Buffer) => void) {
    this.#it = stream[Symbol.asyncIterator]();
    this.#onData = onData;
  }

  async #fill(): Promise<boolean> {
    while (this.#chunk.length === 0) {
      if (this.#eof) return false;
      const r = await this.#it.next();
      if (r.done) {
        this.#eof = true;
        return false;
      }
      const v = r.value;
      this.#chunk = Buffer.isBuffer(v)
        ? v
        : typeof v === 'string'
          ? Buffer.from(v)
          : Buffer.from(v as Uint8Array);
      this.#onData?.(this.#chunk);
    }
    return true;
  }

  /** Up to `max` bytes (at least one), or null at EOF. */
  async take(max: number): Promise<Buffer | null> {
    if (this.#chunk.length === 0 && !(await this.#fill())) return null;
    const n = Math.min(max, this.#chunk.length);
    const out = this.#chunk.subarray(0, n);
    this.#chunk = this.#chunk.subarray(n);
    this.offset += n;
    return out;
  }

  /** Exactly `n` bytes; shorter at EOF; null when EOF comes before the first byte. */
  async exact(n: number): Promise<Buffer | null> {
    if (this.#chunk.length >= n) {
      const out = this.#chunk.subarray(0, n);
      this.#chunk = this.#chunk.subarray(n);
      this.offset += n;
      return out;
    }
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = await this.take(n - got);
      if (c === null) break;
      parts.push(c);
      got += c.length;
    }
    if (got === 0) return null;
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /** Skips up to `n` bytes; returns how many were skipped (fewer only at EOF). */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const c = await this.take(left);
      if (c === null) break;
      left -= c.length;
    }
    return n - left;
  }
}
