import { throwIfAborted } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { type Descriptor, hostPlatform, type Platform, parsePlatform } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  familiarName,
  familiarString,
  normalizeReference,
  type Reference,
  referenceString,
} from '../reference/index.ts';
import {
  openStores,
  type RegistryOptions,
  registryClientFor,
  repositoryOnly,
  type StoreOptions,
} from './context.ts';
import { acquireLease } from './lease.ts';

export interface PullOptions extends RunOptions, StoreOptions {
  registry?: RegistryOptions;
  /** Which manifest of a multi-platform image to fetch: `os/arch[/variant]`. Default: the host's. `all` fetches every platform. */
  platform?: string | Platform;
  /** Pull every tag of the repository (the reference must not carry a tag or digest). */
  allTags?: boolean;
}

export interface PullResult {
  /** Full normalised name the image was stored under (docker.io/library/busybox:latest). */
  name: string;
  /** The root descriptor as the registry serves it (an index for multi-platform images). */
  descriptor: Descriptor;
  /** 'downloaded' when content was fetched, 'up-to-date' when everything was present. */
  status: 'downloaded' | 'up-to-date';
  /** Bytes of blob content fetched. */
  bytes: number;
}

/**
 * Pulls an image from its registry into the content store and names it in the image store
 * (docker pull). Streams every blob through digest verification into the store; blobs
 * already present are skipped. Reports per-layer progress and docker's Digest/Status lines.
 * Throws DRAY_INVALID_REFERENCE, DRAY_INVALID_ARGUMENT (a tag or digest with `allTags`), DRAY_MANIFEST_UNKNOWN, DRAY_PULL_DENIED,
 * DRAY_PLATFORM_NOT_FOUND, DRAY_DIGEST_MISMATCH, DRAY_REGISTRY_* and DRAY_ABORTED.
 */
export async function pull(ref: string, o: PullOptions): Promise<PullResult[]> {
  throwIfAborted(o.signal);
  const parsed = normalizeReference(ref);
  if (o.allTags) return pullAllTags(repositoryOnly(ref), o);
  return [await pullOne(parsed, o)];
}

async function pullAllTags(base: Reference, o: PullOptions): Promise<PullResult[]> {
  const { client, dispose } = registryClientFor(o.registry);
  try {
    const repo = client.repository(base);
    const tags: string[] = [];
    for await (const t of repo.tags({ signal: o.signal })) tags.push(t);
    const results: PullResult[] = [];
    for (const tag of tags.sort()) {
      results.push(
        await pullOne(
          { domain: base.domain, path: base.path, tag },
          { ...o, registry: { ...o.registry, client } },
        ),
      );
    }
    return results;
  } finally {
    await dispose();
  }
}

function platformOf(p: PullOptions['platform']): Platform | undefined {
  if (p === 'all') return undefined;
  if (p === undefined) return hostPlatform();
  return typeof p === 'string' ? parsePlatform(p) : p;
}

async function pullOne(ref: Reference, o: PullOptions): Promise<PullResult> {
  const { content, images } = await openStores(o);
  const { client, dispose } = registryClientFor(o.registry);
  const lease = await acquireLease(o.root);
  const name = referenceString(ref);
  const familiar = familiarString(ref);
  try {
    const repo = client.repository(ref);
    o.progress?.write({
      id: `pull:${name}`,
      kind: 'message',
      message: `${ref.digest ?? ref.tag}: Pulling from ${familiarName({ domain: ref.domain, path: ref.path })}`,
    });
    const descriptor = await repo.resolve(ref.digest ?? ref.tag ?? 'latest', { signal: o.signal });
    const before = await images.get(name).catch(() => undefined);
    const result = await copyGraph(repo, content, descriptor, {
      words: 'pull',
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
      ...(o.registry?.concurrency ? { concurrency: o.registry.concurrency } : {}),
      ...((): { platform?: Platform } => {
        const p = platformOf(o.platform);
        return p ? { platform: p } : {};
      })(),
    });
    await images.tag(name, descriptor);
    const fetched = result.copied.length > 0;
    const status = fetched || before?.target.digest !== descriptor.digest ? 'downloaded' : 'up-to-date';
    o.progress?.write({ id: `digest:${name}`, kind: 'message', message: `Digest: ${descriptor.digest}` });
    o.progress?.write({
      id: `status:${name}`,
      kind: 'message',
      message:
        status === 'downloaded'
          ? `Status: Downloaded newer image for ${familiar}`
          : `Status: Image is up to date for ${familiar}`,
    });
    return { name, descriptor, status, bytes: result.bytes };
  } finally {
    await lease.release();
    await dispose();
  }
}
