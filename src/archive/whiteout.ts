import { DrayError } from '../errors.ts';

/**
 * Whiteouts and archive path names, as the OCI image-spec `layer.md` ("Whiteouts") defines
 * them: `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq` makes its
 * directory opaque (hides every lower child). Other `.wh..wh.` names are AUFS metadata
 * (`.wh..wh.plnk`, `.wh..wh.aufs`) and are ignored, as containerd and moby ignore them.
 * Shared by safe unpack (`applyLayer`) and flattening (`flattenLayers`). No I/O.
 */

export const WHITEOUT_PREFIX = '.wh.';
export const WHITEOUT_META_PREFIX = '.wh..wh.';
export const WHITEOUT_OPAQUE = '.wh..wh..opq';

/** Longest path (bytes) and path component (bytes) an entry may have: Linux PATH_MAX / NAME_MAX. */
export const MAX_PATH_BYTES = 4096;
export const MAX_NAME_BYTES = 255;

/** What a whiteout entry means, with paths as cleaned component lists relative to the layer root. */
export type Whiteout =
  | { kind: 'delete'; path: string[] }
  | { kind: 'opaque'; dir: string[] }
  | { kind: 'meta' };

/**
 * Cleans an archive name into path components relative to the root: `.` and empty
 * components go, `..` is resolved lexically, a leading `/` is dropped (confined, as GNU tar
 * and containerd do). `[]` is the root itself.
 * @throws DRAY_UNSAFE_ARCHIVE when `..` would climb above the root (moby's breakout rule);
 *   DRAY_INVALID_ARCHIVE for a NUL byte or a name longer than PATH_MAX / NAME_MAX.
 */
export function cleanName(name: string, what = 'entry'): string[] {
  if (name.includes('\0'))
    throw new DrayError(
      'DRAY_INVALID_ARCHIVE',
      `invalid ${what} name ${JSON.stringify(name)}: contains a NUL byte`,
    );
  if (Buffer.byteLength(name) > MAX_PATH_BYTES)
    throw new DrayError(
      'DRAY_INVALID_ARCHIVE',
      `invalid ${what} name ${JSON.stringify(`${name.slice(0, 64)}…`)}: longer than ${MAX_PATH_BYTES} bytes`,
    );
  const out: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0)
        throw new DrayError(
          'DRAY_UNSAFE_ARCHIVE',
          `unsafe ${what} name ${JSON.stringify(name)}: escapes the root`,
          {
            hint: 'the layer was crafted to write outside its directory; do not trust its source',
          },
        );
      out.pop();
      continue;
    }
    if (Buffer.byteLength(c) > MAX_NAME_BYTES)
      throw new DrayError(
        'DRAY_INVALID_ARCHIVE',
        `invalid ${what} name ${JSON.stringify(`${name.slice(0, 64)}…`)}: a component is longer than ${MAX_NAME_BYTES} bytes`,
      );
    out.push(c);
  }
  return out;
}

/**
 * The whiteout a cleaned entry path stands for, or `undefined` for an ordinary entry.
 * @throws DRAY_UNSAFE_ARCHIVE for `.wh..` (a whiteout of the parent itself, e.g. the root);
 *   DRAY_INVALID_ARCHIVE for a bare `.wh.`.
 */
export function parseWhiteout(path: readonly string[], name = path.join('/')): Whiteout | undefined {
  const base = path[path.length - 1];
  if (base === undefined || !base.startsWith(WHITEOUT_PREFIX)) return undefined;
  const dir = path.slice(0, -1);
  if (base === WHITEOUT_OPAQUE) return { kind: 'opaque', dir };
  if (base.startsWith(WHITEOUT_META_PREFIX)) return { kind: 'meta' };
  const target = base.slice(WHITEOUT_PREFIX.length);
  if (target === '')
    throw new DrayError('DRAY_INVALID_ARCHIVE', `invalid whiteout ${JSON.stringify(name)}: names no file`);
  if (target === '.' || target === '..')
    throw new DrayError(
      'DRAY_UNSAFE_ARCHIVE',
      `unsafe whiteout ${JSON.stringify(name)}: deletes its own directory`,
      {
        hint: 'the layer was crafted to delete outside its directory; do not trust its source',
      },
    );
  return { kind: 'delete', path: [...dir, target] };
}
