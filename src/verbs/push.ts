import { DrayError, throwIfAborted } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { type Descriptor, hostPlatform, parseDocument, readDocument, selectManifest } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  familiarName,
  normalizeReference,
  type Reference,
  referenceString,
  repositoryName,
  withTag,
} from '../reference/index.ts';
import {
  openStores,
  type RegistryOptions,
  registryClientFor,
  repositoryOnly,
  type StoreOptions,
  type Stores,
} from './context.ts';

export interface PushOptions extends RunOptions, StoreOptions {
  registry?: RegistryOptions;
}

export interface PushResult {
  name: string;
  /** The root pushed (for a single-platform pull of a multi-platform image: that platform's manifest). */
  descriptor: Descriptor;
  /** Bytes uploaded (mounted and existing blobs excluded). */
  bytes: number;
}

/**
 * Pushes a named image from the image store to its registry (docker push): blobs the
 * registry has are skipped, blobs in another repository of the same registry are mounted,
 * the rest are uploaded as streams; manifests go last, then the tag.
 * Throws DRAY_NOT_FOUND (no such image), DRAY_PUSH_DENIED, DRAY_REGISTRY_*, DRAY_ABORTED.
 */
export async function push(ref: string, o: PushOptions): Promise<PushResult> {
  throwIfAborted(o.signal);
  return pushOne(normalizeReference(ref), o, await openStores(o), true);
}

/** One push; `announce` prints docker's "The push refers to repository" line first. */
async function pushOne(
  parsed: Reference,
  o: PushOptions,
  stores: Stores,
  announce: boolean,
): Promise<PushResult> {
  const name = referenceString(parsed);
  const local = await stores.images.resolve(name);
  const root = await pushableRoot(stores, local, o);
  const { client, dispose } = registryClientFor(o.registry);
  try {
    const repo = client.repository(parsed);
    if (announce) announceRepository(parsed, o);
    const mountFrom = await mountSource(stores, parsed, root);
    const result = await copyGraph(stores.content, repo, root, {
      words: 'push',
      ...(mountFrom ? { mountFrom } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.registry?.concurrency ? { concurrency: o.registry.concurrency } : {}),
    });
    if (parsed.tag) await repo.tag(parsed.tag, root, { signal: o.signal });
    o.progress?.write({
      id: `pushed:${name}`,
      kind: 'message',
      message: `${parsed.tag ?? parsed.digest}: digest: ${root.digest} size: ${root.size}`,
    });
    return { name, descriptor: root, bytes: result.bytes };
  } finally {
    await dispose();
  }
}

/**
 * Pushes every tag the image store holds for one repository (docker push --all-tags), in
 * tag order, over one registry client, so blobs an earlier tag uploaded are found, not sent
 * again. Throws DRAY_INVALID_ARGUMENT when `repository` carries a tag or digest,
 * DRAY_NOT_FOUND when no tag of it is stored, then whatever `push` throws.
 */
export async function pushAllTags(repository: string, o: PushOptions): Promise<PushResult[]> {
  throwIfAborted(o.signal);
  const base = repositoryOnly(repository);
  const stores = await openStores(o);
  const tags: string[] = [];
  for (const record of await stores.images.list()) {
    if (record.name.startsWith('sha256:')) continue;
    const r = normalizeReference(record.name);
    if (r.domain === base.domain && r.path === base.path && r.tag !== undefined && r.digest === undefined)
      tags.push(r.tag);
  }
  if (tags.length === 0) {
    throw new DrayError('DRAY_NOT_FOUND', `no tag of ${familiarName(base)} exists locally`, {
      hint: `tag an image into it first: dray tag IMAGE ${familiarName(base)}:TAG`,
    });
  }
  const { client, dispose } = registryClientFor(o.registry);
  try {
    // As docker: the repository line once, then each tag's layers and digest line.
    announceRepository(base, o);
    const results: PushResult[] = [];
    for (const tag of tags.sort()) {
      results.push(
        await pushOne(withTag(base, tag), { ...o, registry: { ...o.registry, client } }, stores, false),
      );
    }
    return results;
  } finally {
    await dispose();
  }
}

function announceRepository(ref: Reference, o: PushOptions): void {
  o.progress?.write({
    id: `push:${repositoryName(ref)}`,
    kind: 'message',
    message: `The push refers to repository [${repositoryName(ref)}]`,
  });
}

/**
 * The root to push. An index whose manifests are not all stored (a single-platform pull)
 * cannot be pushed whole — registries reject an index with missing children — so push the
 * stored platform's manifest instead, as docker's classic image store does.
 */
async function pushableRoot(stores: Stores, root: Descriptor, o: RunOptions): Promise<Descriptor> {
  const doc = parseDocument(await readDocument(stores.content, root, o), root.mediaType);
  if (doc.kind !== 'index') return root;
  const present = await Promise.all(doc.index.manifests.map((m) => stores.content.has(m, o)));
  if (present.every(Boolean)) return root;
  const available = { ...doc.index, manifests: doc.index.manifests.filter((_, i) => present[i]) };
  if (available.manifests.length === 0) {
    throw new DrayError(
      'DRAY_NOT_FOUND',
      `image content for ${root.digest} is missing from the content store`,
      {
        hint: 'pull the image again',
      },
    );
  }
  try {
    return selectManifest(available, hostPlatform());
  } catch {
    return available.manifests[0]!;
  }
}

/**
 * A repository on the same registry that probably holds this image's blobs: one the same
 * image was pulled from or pushed to, else any other repository of that registry we have
 * images of. A wrong guess costs one mount request answered 202, then a normal upload.
 */
async function mountSource(stores: Stores, target: Reference, root: Descriptor): Promise<string | undefined> {
  let fallback: string | undefined;
  for (const record of await stores.images.list()) {
    let other: Reference;
    try {
      other = normalizeReference(record.name);
    } catch {
      continue;
    }
    if (other.domain !== target.domain || other.path === target.path) continue;
    if (record.target.digest === root.digest) return other.path;
    fallback ??= other.path;
  }
  return fallback;
}
