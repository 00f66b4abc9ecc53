import type { BuildRecord, HistoryStore, VertexRecord } from './history.ts';

/**
 * "Why it rebuilt": compares a step that missed the cache with the same step of the previous
 * build of the same target (from the build history) and says what changed, in the words a
 * user acts on: the context files that differ, the build-arg or env value, the base image,
 * the instruction text, or the earlier step it depends on. Pure except for reading the
 * previous build's checksum files.
 */
export async function explainMiss(
  current: VertexRecord,
  byKey: ReadonlyMap<string, VertexRecord>,
  previous: BuildRecord | undefined,
  history: HistoryStore,
  currentChecksums?: Record<string, Record<string, string>>,
): Promise<string | undefined> {
  if (!previous) return undefined;
  const before = matchVertex(current, previous);
  if (!before) return current.meta?.instruction ? 'new instruction' : undefined;
  if (before.key === current.key) return 'the cache record was pruned';
  if (before.op !== current.op) {
    // The text as written first (a build-arg leaves it alone), then the values it expands to.
    if (before.meta?.instruction !== current.meta?.instruction) return 'the instruction changed';
    const envChange = changedEnv(before.op, current.op);
    if (envChange.length > 0) return `${envChange.slice(0, 3).join(', ')} changed`;
    return 'the step definition changed';
  }
  // Same op: an input changed. Context files first (the most useful answer).
  if (current.checksums && before.checksums) {
    for (const [sel, digest] of Object.entries(current.checksums)) {
      if (before.checksums[sel] === digest) continue;
      const old = await history.checksumFiles(previous.id, before.step);
      const files = changedFiles(old?.[sel] ?? {}, currentChecksums?.[sel] ?? {});
      if (files.length > 0) {
        const shown = files
          .slice(0, 3)
          .map((f) => f.replace(/^\//, ''))
          .join(', ');
        return `${shown}${files.length > 3 ? ` and ${files.length - 3} more` : ''} changed`;
      }
      return 'context files changed';
    }
  }
  for (const [i, key] of current.inputKeys.entries()) {
    if (before.inputKeys[i] === key) continue;
    const input = byKey.get(key);
    if (!input) return 'an input changed';
    if (input.op.includes('"source"') && input.op.includes('"image"'))
      return `the base image changed (${input.name ?? 'FROM'})`;
    return `${input.name ?? 'an earlier step'} changed`;
  }
  return undefined;
}

function matchVertex(current: VertexRecord, previous: BuildRecord): VertexRecord | undefined {
  const stage = current.meta?.stage;
  const instruction = current.meta?.instruction;
  const candidates = previous.vertices.filter((v) => v.meta?.stage === stage && v.meta !== undefined);
  return (
    candidates.find((v) => instruction !== undefined && v.meta?.instruction === instruction) ??
    candidates.find((v) => v.meta?.index !== undefined && v.meta.index === current.meta?.index) ??
    previous.vertices.find((v) => v.name !== undefined && v.name === current.name) ??
    // The same step position (`[builder 3/5]`): the instruction there was edited.
    candidates.find((v) => stepOf(v.name) !== undefined && stepOf(v.name) === stepOf(current.name))
  );
}

/** `[builder 3/5] RUN …` → `builder 3`. */
function stepOf(name: string | undefined): string | undefined {
  const m = name ? /^\[\s*(.*?)\s*(\d+)\/\d+\]/.exec(name) : null;
  return m ? `${m[1]} ${m[2]}` : undefined;
}

function envOf(op: string): Map<string, string> {
  try {
    const parsed = JSON.parse(op) as { env?: string[] };
    return new Map(
      (parsed.env ?? []).map((e) => {
        const i = e.indexOf('=');
        return i < 0 ? [e, ''] : [e.slice(0, i), e.slice(i + 1)];
      }),
    );
  } catch {
    return new Map();
  }
}

function changedEnv(before: string, after: string): string[] {
  const a = envOf(before);
  const b = envOf(after);
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => a.get(n) !== b.get(n)).sort();
}

/** Paths whose per-file digest differs, was added or removed, sorted. */
export function changedFiles(before: Record<string, string>, after: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [p, d] of Object.entries(after)) if (before[p] !== d) out.push(p);
  for (const p of Object.keys(before)) if (!(p in after)) out.push(p);
  return out.sort();
}
