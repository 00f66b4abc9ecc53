import { join, resolve } from 'node:path';
import { createRuncExecutor } from '../executor/index.ts';
import { copyGraph } from '../graph/index.ts';
import { type Descriptor, hostPlatform, type Platform } from '../oci/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
import { createSnapshotter, type SnapshotterKind } from '../snapshot/index.ts';
import { type ImageResolver, Solver, type SourceImage } from '../solver/index.ts';
import {
  openStores,
  type RegistryOptions,
  registryClientFor,
  type StoreOptions,
  type Stores,
} from './context.ts';
import { resolveImage } from './resolve.ts';

/** How the build engine of a data root is set up. */
export interface EngineOptions extends StoreOptions {
  registry?: RegistryOptions;
  /** `auto` (default): overlayfs when this process can mount it, else copying snapshots. */
  snapshotter?: SnapshotterKind | 'auto';
  /** The platform builds run for (default the host's; others are not supported yet). */
  platform?: Platform;
  /** Steps that run at once. */
  concurrency?: number;
}

/** A data root's build engine: stores, snapshotter, runc executor and the solver over them. */
export interface Engine extends Stores {
  solver: Solver;
  /** Image sources (FROM): the image store first, then the registry. */
  resolver: ImageResolver;
  platform: Platform;
}

const engines = new Map<string, Promise<Engine>>();

/**
 * The engine for a data root, made once per process: concurrent solves share one solver, so
 * a vertex they have in common runs once. Does I/O (creates the data root's folders).
 */
export function openEngine(o: EngineOptions): Promise<Engine> {
  const key = `${resolve(o.root)}\0${o.snapshotter ?? 'auto'}`;
  let p = engines.get(key);
  if (!p) {
    p = makeEngine(o);
    engines.set(key, p);
    p.catch(() => engines.delete(key));
  }
  return p;
}

async function makeEngine(o: EngineOptions): Promise<Engine> {
  const stores = await openStores(o);
  const platform = o.platform ?? hostPlatform();
  const snapshotter = () => createSnapshotter(join(o.root, 'snapshots'), { kind: o.snapshotter ?? 'auto' });
  const executor = createRuncExecutor({ root: join(o.root, 'executor') });
  const resolver = imageResolver(stores, o.registry);
  const solver = new Solver({
    root: o.root,
    content: stores.content,
    snapshotter,
    executor,
    resolver,
    platform,
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  });
  return { ...stores, solver, resolver, platform };
}

/**
 * Image sources over the image store and the registry: with resolve mode `default` an image
 * already stored under its name is used as is (no network, as docker build does with a
 * local base image); otherwise, or when it is missing, it is pulled and named, as `dray pull`
 * would.
 */
function imageResolver(stores: Stores, registry: RegistryOptions | undefined): ImageResolver {
  return {
    async resolve(src, o): Promise<SourceImage> {
      const ref = normalizeReference(src.ref);
      const name = referenceString(ref);
      const has = (d: Descriptor): Promise<boolean> => stores.content.has(d);
      if (src.resolveMode !== 'pull' || ref.digest) {
        // A reference pinned by digest (the frontend pins FROM) is found under its tag name.
        const tagName = referenceString({
          domain: ref.domain,
          path: ref.path,
          ...(ref.tag ? { tag: ref.tag } : {}),
        });
        const rec =
          (await stores.images.get(name).catch(() => undefined)) ??
          (ref.digest ? await stores.images.get(tagName).catch(() => undefined) : undefined);
        if (rec) {
          const local = await resolveImage(stores.content, rec.target, { ...o, has }).catch((e: unknown) => {
            if (src.resolveMode === 'local') throw e;
            return undefined;
          });
          const matches =
            !ref.digest ||
            rec.target.digest === ref.digest ||
            local?.manifestDescriptor.digest === ref.digest;
          if (local && matches && (await allPresent(stores, local.manifest.layers)))
            return {
              ref: `${name.split('@')[0]}@${rec.target.digest}`,
              digest: local.manifestDescriptor.digest,
              rootDigest: rec.target.digest,
              config: local.config,
              layers: local.manifest.layers,
            };
        }
      }
      const { client, dispose } = registryClientFor(registry);
      try {
        const repo = client.repository(ref);
        const root = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', o);
        await copyGraph(repo, stores.content, root, { ...o, platform: o.platform, words: 'pull' });
        await stores.images.tag(name, root);
        const img = await resolveImage(stores.content, root, { ...o, has });
        return {
          ref: `${name.split('@')[0]}@${root.digest}`,
          digest: img.manifestDescriptor.digest,
          rootDigest: root.digest,
          config: img.config,
          layers: img.manifest.layers,
        };
      } finally {
        await dispose();
      }
    },
    async fetchLayer(image, layer, o): Promise<void> {
      if (await stores.content.has(layer)) return;
      const ref = normalizeReference(image.ref);
      const { client, dispose } = registryClientFor(registry);
      try {
        await copyGraph(client.repository(ref), stores.content, layer, o);
      } finally {
        await dispose();
      }
    },
  };
}

async function allPresent(stores: Stores, layers: readonly Descriptor[]): Promise<boolean> {
  for (const l of layers) if (!(await stores.content.has(l))) return false;
  return true;
}
