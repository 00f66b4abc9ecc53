// The identity of the sources a CLI bundle was built from, so that bin/dray.js runs dist/ only
// while it matches and an edited checkout never runs stale code. The stamp lists every
// non-test .ts file under src/ with its size and mtime, every directory under src/ with its
// mtime, and the lock file. Checking it needs no directory walk: a file added, removed or
// renamed changes its directory's mtime, an edit changes the file's own. So a launch costs
// one stat per listed path (~2 ms for ~260), where walking and hashing the tree cost ~20 ms.
// Plain JS, so the launcher reads it without type stripping.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/** The stamp of the sources under `repo` (a JSON text; written by scripts/bundle.ts). */
export function sourceStamp(repo) {
  const src = join(repo, 'src');
  const entries = readdirSync(src, { recursive: true, withFileTypes: true });
  const dirs = ['src', ...entries.filter((e) => e.isDirectory()).map((e) => relativeTo(repo, e))].sort();
  const files = entries
    .filter((e) => e.isFile() && e.name.endsWith('.ts') && !e.name.endsWith('.test.ts'))
    .map((e) => relativeTo(repo, e))
    .sort();
  const stamp = { dirs: {}, files: {} };
  for (const d of dirs) stamp.dirs[d] = statSync(join(repo, d)).mtimeMs;
  for (const f of [...files, 'package-lock.json']) {
    const s = statSync(join(repo, f), { throwIfNoEntry: false });
    stamp.files[f] = s ? [s.size, s.mtimeMs] : null;
  }
  return JSON.stringify(stamp);
}

/** Whether `stamp` (from sourceStamp) still describes the sources under `repo`. Never throws. */
export function stampMatches(repo, stamp) {
  let parsed;
  try {
    parsed = JSON.parse(stamp);
  } catch {
    return false;
  }
  if (typeof parsed !== 'object' || parsed === null || !parsed.dirs || !parsed.files) return false;
  for (const [d, mtime] of Object.entries(parsed.dirs)) {
    const s = statSync(join(repo, d), { throwIfNoEntry: false });
    if (!s?.isDirectory() || s.mtimeMs !== mtime) return false;
  }
  for (const [f, want] of Object.entries(parsed.files)) {
    const s = statSync(join(repo, f), { throwIfNoEntry: false });
    if (want === null ? s !== undefined : s?.size !== want[0] || s.mtimeMs !== want[1]) return false;
  }
  return true;
}

function relativeTo(repo, entry) {
  return relative(repo, join(entry.parentPath, entry.name));
}
