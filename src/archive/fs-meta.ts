import { spawnSync } from 'node:child_process';
import { DrayError } from '../errors.ts';
import { encodeHeader } from './tar-writer.ts';
import type { TarHeader } from './types.ts';

/**
 * What Node's `fs` cannot do, done in batches by two small host tools so that unpacking
 * never spawns a process per file:
 *
 * - special files (fifos, character and block devices, overlayfs whiteout devices): Node has
 *   no `mknod`/`mkfifo`, so they are queued and made by one GNU `tar -x` per batch, fed an
 *   archive of just those entries under their already resolved paths;
 * - extended attributes (incl. binary `security.capability` and overlayfs'
 *   `trusted.overlay.opaque`): Node 24 has no xattr API, so they are queued and set by one
 *   `setfattr -h --restore=-` (Debian package `attr`) per batch, values hex-encoded.
 *
 * Safety: the paths queued here were resolved inside the root by the caller and every
 * component was a real directory at that moment. The caller flushes the batch before it
 * removes or replaces anything, so no queued path can have been redirected through a
 * symlink by a later entry when the tools run. `-h` keeps setfattr off symlinks' targets.
 *
 * The batches run synchronously (`spawnSync`): the unpacker does its file system work
 * synchronously too, and the batch must be complete before the next entry is applied.
 */
export class NativeBatch {
  readonly #root: string;
  readonly #sameOwner: boolean;
  readonly #nodes: TarHeader[] = [];
  readonly #nodePaths = new Set<string>();
  #xattrs: string[] = [];
  #xattrCount = 0;
  /** Files the batch made or touched, for tests and statistics. */
  nodesMade = 0;
  xattrsSet = 0;

  /** `root` is the real absolute path of the unpack root; queued node names are relative to it. */
  constructor(root: string, o: { sameOwner: boolean }) {
    this.#root = root;
    this.#sameOwner = o.sameOwner;
  }

  /** True when something is queued. */
  get pending(): boolean {
    return this.#nodes.length > 0 || this.#xattrCount > 0;
  }

  /** True when a special file is queued at `rel` (not yet on disk). */
  hasNode(rel: string): boolean {
    return this.#nodePaths.has(rel);
  }

  /** Queues a fifo or device node at `rel` (relative to the root, already resolved). */
  addNode(rel: string, h: TarHeader): void {
    this.#nodes.push({ ...h, name: rel, size: 0, xattrs: undefined, pax: undefined, linkname: undefined });
    this.#nodePaths.add(rel);
  }

  /** Queues extended attributes for `abs` (an absolute path inside the root). */
  addXattrs(abs: string, xattrs: ReadonlyMap<string, Buffer>): void {
    if (xattrs.size === 0) return;
    const lines = [`# file: ${quote(abs)}`];
    for (const [k, v] of xattrs) lines.push(`${quote(k)}=0x${v.toString('hex')}`);
    this.#xattrs.push(`${lines.join('\n')}\n`);
    this.#xattrCount += xattrs.size;
  }

  /**
   * Runs the queued work: nodes first (their xattrs may follow), then xattrs.
   * @throws DRAY_CONFIG when `tar` or `setfattr` is missing; DRAY_INVALID_ARCHIVE when tar
   *   cannot make a node; xattr failures are returned as warnings (like containerd, which
   *   only warns when a file system does not support an attribute).
   */
  flush(): string[] {
    const warnings: string[] = [];
    if (this.#nodes.length > 0) {
      const blocks: Buffer[] = [];
      for (const h of this.#nodes) blocks.push(...encodeHeader(h));
      blocks.push(Buffer.alloc(1024));
      const args = ['-x', '-f', '-', '-C', this.#root, '--numeric-owner', '-p', '--no-overwrite-dir'];
      if (!this.#sameOwner) args.push('--no-same-owner');
      else args.push('--same-owner');
      const r = spawnSync('tar', args, { input: Buffer.concat(blocks), maxBuffer: 1 << 20 });
      if (r.error) {
        throw new DrayError('DRAY_CONFIG', `making special files: cannot run tar: ${r.error.message}`, {
          cause: r.error,
          hint: 'install GNU tar',
        });
      }
      if (r.status !== 0) {
        throw new DrayError(
          'DRAY_INVALID_ARCHIVE',
          `making special files: tar exited with ${r.status}: ${r.stderr.toString().trim().slice(0, 500)}`,
        );
      }
      this.nodesMade += this.#nodes.length;
      this.#nodes.length = 0;
      this.#nodePaths.clear();
    }
    if (this.#xattrCount > 0) {
      const r = spawnSync('setfattr', ['-h', '--restore=-'], {
        input: `${this.#xattrs.join('\n')}\n`,
        maxBuffer: 1 << 20,
      });
      if (r.error) {
        throw new DrayError(
          'DRAY_CONFIG',
          `setting extended attributes: cannot run setfattr: ${r.error.message}`,
          {
            cause: r.error,
            hint: "install the 'attr' package (apt-get install attr), or unpack with xattrs: false",
          },
        );
      }
      if (r.status !== 0) {
        for (const line of r.stderr.toString().split('\n')) {
          if (line.trim() !== '') warnings.push(`setting extended attributes: ${line.trim()}`);
        }
      }
      this.xattrsSet += this.#xattrCount;
      this.#xattrs = [];
      this.#xattrCount = 0;
    }
    return warnings;
  }
}

/** getfattr's quoting, which `setfattr --restore` undoes: octal escapes for bytes it would misread. */
function quote(s: string): string {
  const b = Buffer.from(s);
  let out = '';
  for (const c of b) {
    if (c > 0x20 && c < 0x7f && c !== 0x5c && c !== 0x3d) out += String.fromCharCode(c);
    else out += `\\${c.toString(8).padStart(3, '0')}`;
  }
  return out;
}
