import { ContentStore } from '../content/index.ts';
import { DrayError } from '../errors.ts';
import { ImageStore } from '../image/index.ts';
import { normalizeReference, referenceString } from '../reference/index.ts';
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
 * The image-store name for what a user typed: a full normalised reference, or — for images
 * stored without a name (a `docker save` of an untagged image) — their root digest as is.
 */
export function localName(input: string): string {
  if (/^sha256:[a-f0-9]{64}$/.test(input)) return input;
  return referenceString(normalizeReference(input));
}
