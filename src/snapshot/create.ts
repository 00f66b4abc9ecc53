import { lstat, mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join, resolve } from 'node:path';
import { DrayError } from '../errors.ts';
import { makeTemp, type StoreDirs } from './common.ts';
import { CopySnapshotter } from './copy.ts';
import { mountFs, removeTrees, setXattr, unmount } from './host.ts';
import { OVERLAY_FEATURES, OverlaySnapshotter } from './overlay.ts';
import type { Snapshotter, SnapshotterOptions } from './types.ts';

/**
 * Opens the snapshotter that keeps its state in `root` (`<data root>/snapshots`; made if
 * missing), removes what dead processes left there (`recover()`), and returns it.
 * `kind: 'auto'` (default) tries a real overlay mount in `root` (two lower layers, an upper
 * one, a whiteout and an opaque directory made through the mount) and falls back to `copy`
 * when the kernel or the filesystem refuses it. Does I/O (spawns mount/umount).
 * @throws DRAY_SNAPSHOT when `kind: 'overlay'` was asked for and overlayfs does not work in
 *   `root` (the message says why); DRAY_INVALID_ARGUMENT for an unknown kind.
 */
export async function createSnapshotter(root: string, o: SnapshotterOptions = {}): Promise<Snapshotter> {
  const kind = o.kind ?? 'auto';
  if (kind !== 'auto' && kind !== 'overlay' && kind !== 'copy')
    throw new DrayError('DRAY_INVALID_ARGUMENT', `unknown snapshotter kind ${JSON.stringify(kind)}`, {
      hint: "use 'overlay', 'copy' or 'auto'",
    });
  let real: string;
  try {
    await mkdir(resolve(root), { recursive: true, mode: 0o755 });
    // mount points are compared with /proc/self/mountinfo, which shows real paths
    real = await realpath(resolve(root));
  } catch (e) {
    throw new DrayError('DRAY_SNAPSHOT', `cannot create snapshot root ${root}: ${(e as Error).message}`, {
      cause: e,
    });
  }
  let s: OverlaySnapshotter | CopySnapshotter;
  if (kind === 'copy') {
    s = new CopySnapshotter(real);
  } else {
    const overlay = new OverlaySnapshotter(real);
    const why = await overlayUnusable(overlay);
    if (why === undefined) s = overlay;
    else if (kind === 'overlay')
      throw new DrayError('DRAY_SNAPSHOT', `overlayfs cannot be used in ${real}: ${why}`, {
        hint: "run as root on a filesystem overlayfs accepts as upper layer (ext4, xfs, btrfs, tmpfs), or use kind 'copy'",
      });
    else s = new CopySnapshotter(real);
  }
  await s.init();
  await s.recover();
  return s;
}

/** Why overlayfs cannot serve `s` (undefined when it can), found by trying it. Does I/O. */
async function overlayUnusable(s: OverlaySnapshotter): Promise<string | undefined> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) return 'not running as root';
  try {
    await s.init();
  } catch (e) {
    return (e as Error).message;
  }
  // A successful probe holds until the machine reboots (or the kernel or user changes): a
  // marker saves every later process the mount, write and unmount (~30 ms of a warm build).
  const marker = join(s.dirs.base, 'probe-ok.json');
  const identity = JSON.stringify({
    kernel: release(),
    boot: (await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => '')).trim(),
    uid: process.getuid?.() ?? -1,
  });
  if ((await readFile(marker, 'utf8').catch(() => '')) === identity) return undefined;
  const why = await probeOverlay(s.dirs);
  if (why === undefined) await writeFile(marker, identity).catch(() => {});
  return why;
}

/**
 * Mounts a tiny overlay in `tmp/` with the options the snapshotter uses (relative lower
 * paths, as its mounts have), deletes a lower file and replaces a lower directory through it,
 * and checks that overlayfs wrote a whiteout device; then checks that this process may set
 * `trusted.*` xattrs itself, as unpacking opaque directories needs. Does I/O.
 */
async function probeOverlay(d: StoreDirs): Promise<string | undefined> {
  let dir: string | undefined;
  let mounted = false;
  try {
    dir = await makeTemp(d, '.probe');
    for (const sub of ['l1', 'l2', 'l2/d', 'u', 'w', 'm']) await mkdir(join(dir, sub));
    await writeFile(join(dir, 'l1', 'f'), 'f');
    await writeFile(join(dir, 'l2', 'd', 'x'), 'x');
    const merged = join(dir, 'm');
    await mountFs('overlay', `lowerdir=l1:l2,upperdir=u,workdir=w,${OVERLAY_FEATURES}`, merged, { cwd: dir });
    mounted = true;
    await rm(join(merged, 'f'));
    await rm(join(merged, 'd'), { recursive: true });
    await mkdir(join(merged, 'd'));
    await writeFile(join(merged, 'd', 'y'), 'y');
    await unmount(merged);
    mounted = false;
    const wh = await lstat(join(dir, 'u', 'f'));
    if (!wh.isCharacterDevice() || wh.rdev !== 0) return 'overlayfs did not write a whiteout device';
    await setXattr(join(dir, 'l1'), 'trusted.overlay.opaque', 'y');
    return undefined;
  } catch (e) {
    return (e as Error).message;
  } finally {
    if (dir !== undefined) {
      if (mounted) await unmount(join(dir, 'm')).catch(() => {});
      await removeTrees([dir]).catch(() => {});
    }
  }
}
