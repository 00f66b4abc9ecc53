/**
 * `RUN --mount=…` values, parsed as BuildKit's `instructions/commands_runmount.go` does: a
 * CSV line of `key=value` fields (and bare `ro`/`rw`/`required`), checked per mount type,
 * with upstream's error wording. Parsing happens twice, as upstream: at parse time without
 * expansion (only `from` is read, and may not hold variables), and at conversion time with
 * every value expanded against the step's environment.
 */
import { withSuggestion } from '../parser/index.ts';
import { goQuote } from '../shell/gotext.ts';
import type { MountSharing, MountType, RunMount } from './types.ts';

/** Expands one word against the current environment (throws on bad syntax). */
export type WordExpander = (word: string) => string;

const mountTypes: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const sharingModes: readonly MountSharing[] = ['shared', 'private', 'locked'];
const allKeys = [
  'type',
  'from',
  'source',
  'target',
  'readonly',
  'id',
  'sharing',
  'required',
  'size',
  'mode',
  'uid',
  'gid',
  'src',
  'dst',
  'destination',
  'ro',
  'rw',
  'readwrite',
  'env',
];

function byteLength(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Splits one CSV record as tonistiigi/go-csvvalue (encoding/csv rules: `"` quotes a field,
 * `""` inside quotes is a quote, a bare `"` elsewhere is an error). Throws `Error` with
 * encoding/csv's message.
 */
export function csvFields(input: string): string[] {
  let line = input;
  if (line.endsWith('\n')) line = line.slice(0, line.endsWith('\r\n') ? -2 : -1);
  if (line === '') throw new Error('EOF');
  const out: string[] = [];
  let pos = 0;
  const parseError = (p: number, what: string) =>
    new Error(`parse error on line 1, column ${p + 1}: ${what}`);
  for (;;) {
    if (line === '' || line[0] !== '"') {
      const i = line.indexOf(',');
      const field = i >= 0 ? line.slice(0, i) : line;
      const q = field.indexOf('"');
      if (q >= 0) throw parseError(pos + byteLength(field.slice(0, q)), 'bare " in non-quoted-field');
      out.push(field);
      if (i < 0) return out;
      line = line.slice(i + 1);
      pos += byteLength(field) + 1;
      continue;
    }
    line = line.slice(1);
    pos += 1;
    let halfOpen = false;
    for (;;) {
      const i = line.indexOf('"');
      if (i < 0) throw parseError(pos, 'extraneous or missing " in quoted-field');
      const part = line.slice(0, i);
      if (halfOpen) out[out.length - 1] += part;
      else out.push(part);
      halfOpen = false;
      line = line.slice(i + 1);
      pos += byteLength(part) + 1;
      if (line[0] === '"') {
        out[out.length - 1] += '"';
        line = line.slice(1);
        pos += 1;
        halfOpen = true;
      } else if (line[0] === ',') {
        line = line.slice(1);
        pos += 1;
        break;
      } else if (line === '') {
        return out;
      } else {
        throw parseError(pos - 1, 'extraneous or missing " in quoted-field');
      }
    }
  }
}

/** Go's `strconv.ParseBool`; undefined when not a boolean. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Go's `strconv.ParseUint(s, base, 32)` for base 8 or 10; undefined on any error. */
export function parseGoUint32(s: string, base: 8 | 10): number | undefined {
  const re = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!re.test(s)) return undefined;
  const n = Number.parseInt(s, base);
  return n <= 0xffffffff ? n : undefined;
}

/** Go's `strconv.ParseFloat(s, 64)` for the decimal forms a size uses; undefined when invalid. */
function parseGoFloat(s: string): number | undefined {
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(s)) return undefined;
  return Number(s);
}

/** docker/go-units `RAMInBytes`: `64m`, `1g`, `512k`, `1.5GiB`, `100` (binary multipliers). */
export function ramInBytes(size: string): number | undefined {
  let sep = -1;
  for (let i = size.length - 1; i >= 0; i--) {
    if ('01234567890. '.includes(size[i]!)) {
      sep = i;
      break;
    }
  }
  if (sep === -1) return undefined;
  const num = size[sep] !== ' ' ? size.slice(0, sep + 1) : size.slice(0, sep);
  let sfx = size.slice(sep + 1);
  let n = parseGoFloat(num);
  if (n === undefined || n < 0) return undefined;
  if (sfx === '') return Math.trunc(n);
  if (sfx.length > 3) return undefined;
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') return sfx.length > 1 ? undefined : Math.trunc(n);
  const mul = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 }[sfx[0]!];
  if (mul === undefined) return undefined;
  n *= mul;
  if (sfx.length === 2 && sfx[1] !== 'b') return undefined;
  if (sfx.length === 3 && sfx.slice(1) !== 'ib') return undefined;
  return Math.trunc(n);
}

/**
 * Parses one `--mount` value. Without `expand` (parse time) only `from` is read and must not
 * reference a variable; with it every value is expanded first and the mount is fully
 * checked. Throws `Error` with BuildKit's message (`unexpected key 'x' in 'x=1'`,
 * `invalid secret mount. one of source, target required`…); callers locate it.
 */
export function parseMount(value: string, expand?: WordExpander): RunMount {
  let fields: string[];
  try {
    fields = csvFields(value);
  } catch (e) {
    throw new Error(`failed to parse csv mounts: ${(e as Error).message}`);
  }
  const m: RunMount = {
    type: 'bind',
    from: '',
    source: '',
    target: '',
    readOnly: false,
    sizeLimit: 0,
    cacheId: '',
    cacheSharing: '',
    required: false,
  };
  let roAuto = true;
  const boolOf = (key: string, v: string): boolean => {
    const b = parseGoBool(v);
    if (b === undefined) throw new Error(`invalid value for ${key}: ${v}`);
    return b;
  };

  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let v = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (!expand) continue; // decided once values can be expanded
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        default:
          throw new Error(`invalid field '${field}' must be a key=value pair`);
      }
    }
    if (expand) v = expand(v);
    else if (key === 'from') {
      const dollar = v.indexOf('$');
      if (dollar !== -1 && dollar !== v.length - 1)
        throw new Error(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else continue;

    switch (key) {
      case 'type': {
        const t = v.toLowerCase() as MountType;
        if (!mountTypes.includes(t))
          throw new Error(withSuggestion(`unsupported mount type ${goQuote(v)}`, v, mountTypes, true));
        m.type = t;
        break;
      }
      case 'from':
        m.from = v;
        break;
      case 'source':
      case 'src':
        m.source = v;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = v;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = boolOf(key, v);
        roAuto = false;
        break;
      case 'readwrite':
      case 'rw':
        m.readOnly = !boolOf(key, v);
        roAuto = false;
        break;
      case 'required':
        if (m.type !== 'secret' && m.type !== 'ssh')
          throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        m.required = boolOf(key, v);
        break;
      case 'size': {
        if (m.type !== 'tmpfs') throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        const n = ramInBytes(v);
        if (n === undefined) throw new Error(`invalid value for ${key}: ${v}`);
        m.sizeLimit = n;
        break;
      }
      case 'id':
        m.cacheId = v;
        break;
      case 'sharing': {
        const s = v.toLowerCase() as MountSharing;
        if (!sharingModes.includes(s))
          throw new Error(withSuggestion(`unsupported sharing value ${goQuote(v)}`, v, sharingModes, true));
        m.cacheSharing = s;
        break;
      }
      case 'mode': {
        const n = parseGoUint32(v, 8);
        if (n === undefined) throw new Error(`invalid value ${v} for mode`);
        m.mode = n;
        break;
      }
      case 'uid': {
        const n = parseGoUint32(v, 10);
        if (n === undefined) throw new Error(`invalid value ${v} for uid`);
        m.uid = n;
        break;
      }
      case 'gid': {
        const n = parseGoUint32(v, 10);
        if (n === undefined) throw new Error(`invalid value ${v} for gid`);
        m.gid = n;
        break;
      }
      case 'env':
        m.env = v;
        break;
      default:
        throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, allKeys, true));
    }
  }

  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new Error(`mode not allowed for ${goQuote(m.type)} type mounts`);
    if (m.uid !== undefined) throw new Error(`uid not allowed for ${goQuote(m.type)} type mounts`);
    if (m.gid !== undefined) throw new Error(`gid not allowed for ${goQuote(m.type)} type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== '') throw new Error('secret mount should not have a from');
    if (m.cacheSharing !== '') throw new Error('secret mount should not define sharing');
    if (m.source === '' && m.target === '' && m.cacheId === '')
      throw new Error('invalid secret mount. one of source, target required');
    if (m.source !== '' && m.cacheId !== '') throw new Error("both source and id can't be set");
  }
  if (m.cacheSharing !== '' && m.type !== 'cache')
    throw new Error(`invalid cache sharing set for ${m.type} mount`);
  return m;
}
