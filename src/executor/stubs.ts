/**
 * Mount stubs: runc creates an empty file or directory in the rootfs for every mount target
 * that is missing (/etc/resolv.conf, /etc/hosts, cache and secret mounts…). They would end up
 * in the layer, so they are removed after the run if still empty, as BuildKit's
 * `MountStubsCleaner` does (recursively, the way llb exec ops ask for it), restoring the
 * parent directory's times for reproducible layers (moby/buildkit#3148).
 */
import { lstat, readdir, rmdir, stat, unlink, utimes } from 'node:fs/promises';
import { dirname, posix, relative } from 'node:path';
import { resolveInRoot } from './root-path.ts';

function isMissing(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/**
 * Records which of `targets` (container paths) and their parents are missing in `rootfs` now,
 * and returns a function that removes those of them that are empty afterwards. Does I/O
 * (lstat). The cleaner never throws: a stub it cannot remove stays.
 */
export async function recordMountStubs(
  rootfs: string,
  targets: readonly string[],
): Promise<() => Promise<void>> {
  const stubs: string[] = [];
  for (const t of targets) {
    if (posix.join('/', t) === '/') continue;
    let p: string;
    try {
      p = await resolveInRoot(rootfs, t);
    } catch {
      continue;
    }
    while (p !== rootfs && relative(rootfs, p) !== '') {
      try {
        await lstat(p);
        break;
      } catch (e) {
        if (!isMissing(e)) break;
      }
      stubs.push(relative(rootfs, p));
      p = dirname(p);
    }
  }
  return async () => {
    for (const rel of stubs) await removeStub(rootfs, rel).catch(() => {});
  };
}

async function removeStub(rootfs: string, rel: string): Promise<void> {
  const p = await resolveInRoot(rootfs, rel);
  const st = await lstat(p);
  if (st.isDirectory()) {
    if ((await readdir(p)).length !== 0) return;
  } else if (st.size !== 0) {
    return;
  }
  // The parent must be a real directory (no symlink swapped in) before we touch its times.
  const parent = dirname(p);
  if ((await resolveInRoot(rootfs, relative(rootfs, parent))) !== parent) return;
  const pst = await stat(parent);
  if (st.isDirectory()) await rmdir(p);
  else await unlink(p);
  // Seconds as a float keep sub-microsecond precision; a Date would round to milliseconds.
  await utimes(parent, pst.atimeMs / 1000, pst.mtimeMs / 1000);
}
