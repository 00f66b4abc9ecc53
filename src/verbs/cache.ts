import {
  type CacheExportRecord,
  type CacheExportSpec,
  type CacheImportSpec,
  cacheMountBlob,
  exportCache,
  type ImportedCache,
  importCache,
  recompressRecords,
  selectExportRecords,
} from '../cache/index.ts';
import type { Digest } from '../digest/index.ts';
import { isDrayError } from '../errors.ts';
import { OciLayout } from '../layout/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { step } from '../progress/index.ts';
import { familiarString, normalizeReference } from '../reference/index.ts';
import type { LayerRef, SolveOutcome, Vertex } from '../solver/index.ts';
import { type RegistryOptions, registryClientFor } from './context.ts';
import type { Engine } from './engine.ts';

/** Imported caches for one solve, and how to let go of their registry clients. */
export interface OpenedImports {
  sources: ImportedCache[];
  dispose(): Promise<void>;
}

/**
 * Reads every `--cache-from` (in parallel): their configs only, never layers. A cache that
 * cannot be read (missing, unreachable, malformed) is a warning and the build goes on
 * without it, as with BuildKit. Does I/O.
 */
export async function openCacheImports(
  specs: readonly CacheImportSpec[],
  engine: Engine,
  registry: RegistryOptions | undefined,
  o: RunOptions,
): Promise<OpenedImports> {
  const disposers: Array<() => Promise<void>> = [];
  const opened = await Promise.all(
    specs.map(async (spec): Promise<ImportedCache | undefined> => {
      const name = spec.type === 'registry' ? `registry cache ${spec.ref}` : `local cache ${spec.src}`;
      try {
        return await step(
          o.progress,
          `importing cache manifest from ${spec.type === 'registry' ? spec.ref : spec.src}`,
          async () => {
            if (spec.type === 'registry') {
              const ref = normalizeReference(spec.ref);
              const c = registryClientFor(registry);
              disposers.push(c.dispose);
              return importCache(c.client.repository(ref), ref.digest ?? ref.tag ?? 'latest', {
                ...o,
                content: engine.content,
                name: `registry cache ${familiarString(ref)}`,
              });
            }
            const layout = await OciLayout.open(spec.src, o);
            return importCache(layout, spec.digest ?? spec.tag ?? 'latest', {
              ...o,
              content: engine.content,
              name,
            });
          },
        );
      } catch (e) {
        if (o.signal?.aborted || (isDrayError(e) && e.code === 'DRAY_INVALID_ARGUMENT')) throw e;
        o.progress?.write({
          id: `cache-import-warning:${name}`,
          kind: 'message',
          message: `WARNING: ${name} not imported: ${(e as Error).message}`,
        });
        return undefined;
      }
    }),
  );
  return {
    sources: opened.filter((s): s is ImportedCache => s !== undefined),
    dispose: async () => {
      for (const d of disposers) await d().catch(() => {});
    },
  };
}

/**
 * Every step result of a solve that can be exported: each vertex's record (run here, taken
 * from a cache, or known from earlier builds) whose blobs are all in the content store.
 * Input links name only keys of this solve. Does I/O.
 */
export async function exportCandidates(engine: Engine, outcome: SolveOutcome): Promise<CacheExportRecord[]> {
  const keys = new Set<string>();
  for (const v of outcome.vertices.values()) if (v.key) keys.add(v.key);
  const out: CacheExportRecord[] = [];
  const seen = new Set<string>();
  // Records share their lower layers: ask the store once per blob.
  const present = new Map<string, Promise<boolean>>();
  const has = (d: Descriptor): Promise<boolean> => {
    let p = present.get(d.digest);
    if (!p) {
      p = engine.content.has(d);
      present.set(d.digest, p);
    }
    return p;
  };
  for (const v of outcome.vertices.values()) {
    if (!v.key || seen.has(v.key)) continue;
    seen.add(v.key);
    const rec = await engine.solver.records.get(v.key as Digest);
    if (!rec || rec.layers.length === 0) continue;
    if (!(await Promise.all(rec.layers.map((l) => has(l.blob)))).every(Boolean)) continue;
    out.push({
      key: rec.key,
      inputs: v.inputKeys.filter((k) => keys.has(k)) as Digest[],
      layers: rec.layers,
      created: rec.created,
    });
  }
  return out;
}

/** The `RUN --mount=type=cache` ids a graph uses. No I/O. */
export function cacheMountIds(root: Vertex | undefined): string[] {
  const ids = new Set<string>();
  const seen = new Set<string>();
  const walk = (v: Vertex): void => {
    if (seen.has(v.digest)) return;
    seen.add(v.digest);
    if (v.op.kind === 'exec') for (const m of v.op.mounts) if (m.type === 'cache') ids.add(m.id);
    for (const i of v.inputs) walk(i);
  };
  if (root) walk(root);
  return [...ids].sort();
}

export interface RunCacheExportsOptions extends RunOptions {
  engine: Engine;
  /** What the solve can export (`exportCandidates`). */
  candidates: readonly CacheExportRecord[];
  root: Vertex | undefined;
  registry?: RegistryOptions;
  /** The final result's layers (base layers fetched). */
  layers: readonly LayerRef[];
  /** Where the image was pushed, for mounting shared blobs instead of uploading them. */
  pushedTo?: readonly string[];
}

/**
 * Runs the registry and local `--cache-to` exports of a finished solve (inline is written
 * into the image config by the solve verb). Each honours its mode, compression and
 * `ignore-error`. Does I/O.
 */
export async function runCacheExports(
  specs: readonly CacheExportSpec[],
  o: RunCacheExportsOptions,
): Promise<void> {
  const remote = specs.filter((s): s is Exclude<CacheExportSpec, { type: 'inline' }> => s.type !== 'inline');
  if (remote.length === 0) return;
  const ro: RunOptions = {
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  };
  const finalBlobs = o.layers.map((l) => l.blob.digest);
  let mountBlobs: Promise<Array<{ id: string; blob: Descriptor }>> | undefined;
  const mounts = () => {
    mountBlobs ??= (async () => {
      const out: Array<{ id: string; blob: Descriptor }> = [];
      for (const id of cacheMountIds(o.root)) {
        const held = await o.engine.solver.cacheMounts.acquire({ id, sharing: 'shared' });
        try {
          if (held.created) continue;
          const blob = await step(o.progress, `exporting cache mount ${id}`, () =>
            cacheMountBlob(held.path, o.engine.content, ro),
          );
          if (blob) out.push({ id, blob });
        } finally {
          await held.release();
        }
      }
      return out;
    })();
    return mountBlobs;
  };
  for (const spec of remote) {
    const where = spec.type === 'registry' ? `registry cache ${spec.ref}` : `local cache ${spec.dest}`;
    try {
      let records = selectExportRecords(o.candidates, finalBlobs, spec.mode);
      if (spec.compression)
        records = await recompressRecords(records, o.engine.content, spec.compression, {
          ...ro,
          ...(spec.compressionLevel !== undefined ? { level: spec.compressionLevel } : {}),
        });
      const common = {
        ...ro,
        content: o.engine.content,
        records,
        ...(spec.mounts ? { mounts: await mounts() } : {}),
        manifest: { imageManifest: spec.imageManifest, oci: spec.ociMediaTypes },
        name: where,
      };
      if (spec.type === 'registry') {
        const ref = normalizeReference(spec.ref);
        const { client, dispose } = registryClientFor(o.registry);
        try {
          const mountFrom = (o.pushedTo ?? [])
            .map((n) => normalizeReference(n))
            .find((r) => r.domain === ref.domain && r.path !== ref.path)?.path;
          await exportCache(client.repository(ref), {
            ...common,
            tag: ref.digest ?? ref.tag ?? 'latest',
            ...(mountFrom ? { mountFrom } : {}),
          });
        } finally {
          await dispose();
        }
      } else {
        const layout = await OciLayout.create(spec.dest, ro);
        await exportCache(layout, { ...common, tag: spec.tag });
      }
    } catch (e) {
      if (!spec.ignoreError || o.signal?.aborted) throw e;
      o.progress?.write({
        id: `cache-export-warning:${where}`,
        kind: 'message',
        message: `WARNING: ${where} not exported (ignore-error=true): ${(e as Error).message}`,
      });
    }
  }
}
