import { ContentStore } from '../content/index.ts';
import { DrayError, isDrayError } from '../errors.ts';
import { ImageStore } from '../image/index.ts';
import type { Descriptor } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import {
  familiarName,
  normalizeReference,
  parseReference,
  type Reference,
  referenceString,
} from '../reference/index.ts';
import {
  type Authenticator,
  type CredentialStore,
  createAuthenticator,
  createCredentialStore,
  createRegistryClient,
  type RegistryClient,
} from '../registry/index.ts';

/** Where dray keeps its state; every verb takes it. The library never reads env vars. */
export interface StoreOptions {
  /** The data root (content store, image store, locks). */
  root: string;
}

/** How verbs reach registries. */
export interface RegistryOptions {
  /** docker-compatible config dir holding config.json (credentials). Without it: anonymous. */
  configDir?: string;
  /** Credentials to use instead of the config dir. */
  credentials?: CredentialStore;
  /** Hosts (host[:port]) that may be reached over plain HTTP; loopback always may. */
  insecureRegistries?: string[];
  /** Parallel blob transfers (default 4). */
  concurrency?: number;
  /** A client to reuse (its own options win); the verb does not close it. */
  client?: RegistryClient;
}

export interface Stores {
  content: ContentStore;
  images: ImageStore;
}

/** Opens the stores of a data root (creating it when missing). */
export async function openStores(o: StoreOptions): Promise<Stores> {
  if (!o.root) throw new DrayError('DRAY_INVALID_ARGUMENT', 'no data root given', { hint: 'pass { root }' });
  const [content, images] = await Promise.all([ContentStore.open(o.root), ImageStore.open(o.root)]);
  return { content, images };
}

/** A registry client for one verb call, and how to dispose of it. */
export function registryClientFor(o: RegistryOptions = {}): {
  client: RegistryClient;
  dispose(): Promise<void>;
} {
  if (o.client) return { client: o.client, dispose: async () => {} };
  const credentials: CredentialStore =
    o.credentials ??
    (o.configDir
      ? createCredentialStore({ configDir: o.configDir })
      : { get: async () => ({ kind: 'anonymous' }) });
  const authenticator: Authenticator = createAuthenticator({ credentials });
  const client = createRegistryClient({
    authenticator,
    ...(o.insecureRegistries ? { insecureRegistries: o.insecureRegistries } : {}),
    ...(o.concurrency ? { concurrency: o.concurrency } : {}),
  });
  return { client, dispose: () => client.close() };
}

/**
 * The repository of an `--all-tags` pull or push: a name without tag or digest, as docker
 * requires. Throws DRAY_INVALID_REFERENCE, or DRAY_INVALID_ARGUMENT for a tag or digest.
 */
export function repositoryOnly(input: string): Reference {
  const given = parseReference(input);
  if (given.tag !== undefined || given.digest !== undefined) {
    throw new DrayError('DRAY_INVALID_ARGUMENT', `tag can't be used with --all-tags/-a: ${input}`, {
      hint: `give the repository alone: ${familiarName(given)}`,
    });
  }
  return given;
}

/**
 * The image-store name for what a user typed: a full normalised reference, or — for images
 * stored without a name (a `docker save` of an untagged image) — their root digest as is.
 */
export function localName(input: string): string {
  if (/^sha256:[a-f0-9]{64}$/.test(input)) return input;
  return referenceString(normalizeReference(input));
}

/** A local image as `resolveLocalImage` found it. */
export interface LocalImage {
  /** The store name: the one typed, or (found by ID) one of the image's names. */
  name: string;
  root: Descriptor;
  /** Found by its ID rather than by a name. */
  byId: boolean;
}

/** A hex image ID or a prefix of one (at least 4 characters), with or without `sha256:`. */
const IMAGE_ID = /^(?:sha256:)?([a-f0-9]{4,64})$/;

/**
 * A local image by what a user typed, as docker finds it: its name first (normalised:
 * `busybox` is `docker.io/library/busybox:latest`), then its ID — the root digest, or a
 * unique prefix of its hex such as the 12 characters `dray images` shows, with or without
 * `sha256:`. Returns the store name (the image's own name when found by ID) and the root.
 * Does I/O.
 * @throws DRAY_NOT_FOUND when neither matches; DRAY_INVALID_ARGUMENT for an ID prefix that
 *   matches several images; DRAY_INVALID_REFERENCE for input that is neither name nor ID.
 */
export async function resolveLocalImage(
  images: ImageStore,
  input: string,
  o: RunOptions = {},
): Promise<LocalImage> {
  const id = IMAGE_ID.exec(input)?.[1];
  let miss: unknown;
  try {
    const name = localName(input);
    return { name, root: await images.resolve(name, o), byId: false };
  } catch (e) {
    // A 64-hex string is not a valid name (docker refuses it as a repository): an ID then.
    if (id === undefined || !(isDrayError(e, 'DRAY_NOT_FOUND') || isDrayError(e, 'DRAY_INVALID_REFERENCE')))
      throw e;
    miss = e;
  }
  const found = new Map<string, LocalImage>();
  for (const r of await images.list(o)) {
    const hex = r.target.digest.slice(r.target.digest.indexOf(':') + 1);
    if (hex.startsWith(id) && !found.has(r.target.digest))
      found.set(r.target.digest, { name: r.name, root: r.target, byId: true });
  }
  if (found.size === 1) return [...found.values()][0] as LocalImage;
  if (found.size > 1) {
    throw new DrayError(
      'DRAY_INVALID_ARGUMENT',
      `image ID ${input} is ambiguous: it starts ${found.size} images' IDs`,
      {
        hint: 'give more characters of the ID (dray images --no-trunc shows them whole)',
      },
    );
  }
  if (isDrayError(miss, 'DRAY_INVALID_REFERENCE'))
    throw new DrayError('DRAY_NOT_FOUND', `no such image: ${input}`);
  throw miss;
}
