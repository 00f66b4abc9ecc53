import { createHash } from 'node:crypto';
import { Readable, type Writable } from 'node:stream';
import { type Digest, digestHex, digestOf, isDigest } from '../digest/index.ts';
import { DrayError, throwIfAborted } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import {
  type BlobSource,
  type Descriptor,
  hostPlatform,
  type ImageConfig,
  type ImageManifest,
  isIndexType,
  isManifestType,
  MediaTypes,
  maxConfigBytes,
  type Platform,
  parseDocument,
  parseImageConfig,
  readDocument,
  selectManifest,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import { familiarName, familiarString, normalizeReference, referenceString } from '../reference/index.ts';
import { sameReference } from './names.ts';
import { ociLayoutFileContent, parseLayoutIndex, serializeIndex, withName } from './oci-layout.ts';
import { indexTar, type TarIndex, type TarIndexEntry } from './tar-index.ts';
import {
  type ArchiveWriteOptions,
  blobPath,
  dirHeader,
  fileHeader,
  planGraph,
  TarBlobTarget,
  writeTar,
} from './tar-target.ts';
import { withPlainTarLayers } from './zstd-layers.ts';

/** One image for `writeDockerArchive`. */
export interface DockerArchiveImageInput {
  /** Names for `RepoTags` (any docker reference with a tag; written in familiar form). May be empty. */
  tags: string[];
  source: BlobSource;
  /** An image manifest, or an index (then the manifest for `platform` is written). */
  root: Descriptor;
  /** For an index root; default: the host platform. */
  platform?: Platform;
}

/** One entry of `manifest.json` (moby image/tarexport `manifestItem`). */
export interface DockerManifestItem {
  Config: string;
  RepoTags: string[] | null;
  Layers: string[];
  Parent?: string;
  LayerSources?: Record<string, Descriptor>;
}

const foreignTypes = new Set<string>([
  MediaTypes.dockerLayerForeignGzip,
  MediaTypes.ociLayerNondistributable,
  MediaTypes.ociLayerNondistributableGzip,
]);

/**
 * Writes a docker-archive (what `docker save` writes, what `docker load` takes) to `out`, in
 * Docker 25's combined layout so that one tarball serves `docker load` and OCI tools alike
 * (`skopeo inspect oci-archive:`):
 *
 * ```
 * oci-layout  blobs/sha256/<hex>…  index.json  manifest.json  repositories
 * ```
 *
 * `manifest.json`'s `Config` and `Layers` point into `blobs/sha256/`; `index.json` names each
 * tag's manifest. Blobs are written exactly as the source holds them, so the config (the image
 * ID) and the manifest keep their digests: gzip and uncompressed layers are kept as they are —
 * `docker load` decompresses layer files by content (moby `image/tarexport/load.go` runs every
 * layer through `DecompressStream`) and checks the result against `rootfs.diff_ids`. zstd
 * layers, which docker before 23.0 cannot decompress, are written as plain tars under a new
 * manifest (`withPlainTarLayers`); the config, so the image ID, is kept. Deterministic: fixed entry
 * order, mtime `o.mtime` (default 0), root owner. Does I/O; blobs stream through `copyGraph`.
 * @throws DRAY_INVALID_ARGUMENT for a tag that is not a tagged reference;
 *   DRAY_UNSUPPORTED_MEDIA_TYPE for non-distributable layers; DRAY_INVALID_MANIFEST for
 *   a config whose diff_ids do not match the layers; whatever the sources throw; DRAY_ABORTED.
 */
export async function writeDockerArchive(
  out: Writable,
  images: DockerArchiveImageInput[],
  o: ArchiveWriteOptions = {},
): Promise<void> {
  const mtime = o.mtime ?? 0;
  const run: RunOptions = o.signal ? { signal: o.signal } : {};
  await writeTar(
    out,
    async (tar) => {
      const layout = Buffer.from(ociLayoutFileContent);
      await tar.add(fileHeader('oci-layout', layout.length, mtime), layout);
      await tar.add(dirHeader('blobs', mtime));
      await tar.add(dirHeader('blobs/sha256', mtime));
      const target = new TarBlobTarget(tar, { mtime });
      const items: DockerManifestItem[] = [];
      let manifests: Descriptor[] = [];
      const repositories: Record<string, Record<string, string>> = {};
      for (const img of images) {
        throwIfAborted(o.signal);
        const tags = img.tags.map((t) => {
          const r = normalizeReference(t);
          if (r.tag === undefined) {
            throw new DrayError(
              'DRAY_INVALID_ARGUMENT',
              `cannot save ${t} as a docker archive tag: it has no tag`,
              {
                hint: 'docker archives name images by repository:tag',
              },
            );
          }
          return r;
        });
        const manifestDesc = await pickManifest(img.source, img.root, img.platform, run);
        const manifest = parseDocument(
          await readDocument(img.source, manifestDesc, run),
          manifestDesc.mediaType,
        );
        if (manifest.kind !== 'manifest') {
          throw new DrayError('DRAY_INVALID_MANIFEST', `${manifestDesc.digest} is not an image manifest`);
        }
        for (const l of manifest.manifest.layers) {
          if (foreignTypes.has(l.mediaType)) {
            throw new DrayError(
              'DRAY_UNSUPPORTED_MEDIA_TYPE',
              `cannot save non-distributable layer ${l.digest} (${l.mediaType}) in a docker archive`,
            );
          }
        }
        const config = parseImageConfig(
          await readDocument(img.source, manifest.manifest.config, { ...run, maxBytes: maxConfigBytes }),
        );
        checkDiffIds(config, manifest.manifest.layers.length, `image ${manifest.manifest.config.digest}`);
        // zstd layers go in as plain tars: every docker load reads those
        const saved = await withPlainTarLayers(
          { source: img.source, manifestDescriptor: manifestDesc, manifest: manifest.manifest },
          config,
          run,
        );
        const m = saved.manifest;
        const plan = await planGraph(saved.source, saved.manifestDescriptor, run);
        target.expect(plan);
        await copyGraph(saved.source, target, saved.manifestDescriptor, {
          ...run,
          ...(o.progress ? { progress: o.progress } : {}),
          concurrency: Math.max(1, plan.length),
        });
        const repoTags = tags.map((r) => familiarString(r));
        items.push({
          Config: blobPath(m.config),
          RepoTags: repoTags,
          Layers: m.layers.map((l) => blobPath(l)),
        });
        const entry: Descriptor = {
          mediaType: saved.manifestDescriptor.mediaType,
          digest: saved.manifestDescriptor.digest,
          size: saved.manifestDescriptor.size,
        };
        if (tags.length === 0) manifests.push(entry);
        for (const r of tags) manifests = withName(manifests, referenceString(r), entry);
        const top = m.layers.at(-1);
        for (const r of tags) {
          if (!top || r.tag === undefined) continue;
          const repo = familiarName(r);
          repositories[repo] = { ...(repositories[repo] ?? {}), [r.tag]: digestHex(top.digest) };
        }
      }
      const index = serializeIndex({ schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests });
      await tar.add(fileHeader('index.json', index.length, mtime), index);
      const manifestJson = Buffer.from(JSON.stringify(items));
      await tar.add(fileHeader('manifest.json', manifestJson.length, mtime), manifestJson);
      if (Object.keys(repositories).length > 0) {
        const repos = Buffer.from(JSON.stringify(repositories));
        await tar.add(fileHeader('repositories', repos.length, mtime), repos);
      }
    },
    o,
  );
}

async function pickManifest(
  src: BlobSource,
  root: Descriptor,
  platform: Platform | undefined,
  o: RunOptions,
): Promise<Descriptor> {
  if (isManifestType(root.mediaType)) return root;
  if (!isIndexType(root.mediaType)) {
    throw new DrayError(
      'DRAY_UNSUPPORTED_MEDIA_TYPE',
      `cannot save ${root.digest}: ${root.mediaType} is not an image`,
    );
  }
  const parsed = parseDocument(await readDocument(src, root, o), root.mediaType);
  if (parsed.kind !== 'index') throw new DrayError('DRAY_INVALID_MANIFEST', `${root.digest} is not an index`);
  return selectManifest(parsed.index, platform ?? hostPlatform());
}

function checkDiffIds(config: ImageConfig, layers: number, what: string): void {
  const n = config.rootfs.diff_ids.length;
  if (n === 0 && layers > 0) {
    throw new DrayError(
      'DRAY_INVALID_MANIFEST',
      `${what}: config has no rootfs.diff_ids but ${layers} layers`,
    );
  }
  if (n !== layers) {
    throw new DrayError(
      'DRAY_INVALID_MANIFEST',
      `${what}: config has ${n} rootfs.diff_ids but the image has ${layers} layers (one diff_id per layer)`,
    );
  }
}

// ───────────────────────────── reading ─────────────────────────────

/** One image found in a docker archive, ready to copy into a store. */
export interface DockerArchiveImage {
  /** `RepoTags` as written (familiar form); empty for untagged images. */
  repoTags: string[];
  /** The same names, normalised (`docker.io/library/x:latest`), for an image store. */
  names: string[];
  /** The root to copy: the archive's own manifest when it has one (Docker 25), else one built here (OCI). */
  manifest: Descriptor;
  /** The config, byte-identical to the archive's: its digest is the docker image ID. */
  config: Descriptor;
  layers: Descriptor[];
  diffIds: Digest[];
}

export interface ReadDockerArchiveOptions extends RunOptions {
  /**
   * Keep only the image tagged `tag` (compared as normalised references, so `x`,
   * `x:latest` and `index.docker.io/library/x:latest` are the same).
   */
  tag?: string;
}

/** A docker archive opened for reading: a BlobSource over its content, and its images. */
export interface DockerArchive extends BlobSource {
  readonly file: string;
  readonly images: readonly DockerArchiveImage[];
  /**
   * The image tagged `tag`, or the only image when `tag` is undefined.
   * @throws DRAY_NOT_FOUND when no image has the tag (or the archive holds none);
   *   DRAY_INVALID_ARGUMENT when `tag` is undefined and the archive holds several images.
   */
  image(tag?: string): DockerArchiveImage;
}

const blobPathRe = /^blobs\/sha256\/([a-f0-9]{64})$/;
const maxManifestJsonBytes = 8 * 1024 * 1024;

function invalidArchive(file: string, why: string, o: { cause?: unknown; hint?: string } = {}): DrayError {
  return new DrayError('DRAY_INVALID_ARCHIVE', `invalid docker archive ${file}: ${why}`, {
    ...(o.cause !== undefined ? { cause: o.cause } : {}),
    hint: o.hint ?? "expected the output of 'docker save' (manifest.json, configs and layers)",
  });
}

function parseManifestJson(file: string, bytes: Buffer): DockerManifestItem[] {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw invalidArchive(file, `manifest.json is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (doc === null) throw invalidArchive(file, 'manifest.json is null: the archive lists no images');
  if (!Array.isArray(doc)) throw invalidArchive(file, 'manifest.json is not a list of images');
  return doc.map((raw, i) => {
    const it = raw as Partial<Record<keyof DockerManifestItem, unknown>> | null;
    const bad = (why: string) => invalidArchive(file, `manifest.json entry ${i}: ${why}`);
    if (typeof it !== 'object' || it === null) throw bad('not an object');
    if (typeof it.Config !== 'string' || it.Config === '') throw bad('no Config path');
    if (!Array.isArray(it.Layers) || !it.Layers.every((l) => typeof l === 'string'))
      throw bad('Layers is not a list of paths');
    if (
      it.RepoTags != null &&
      (!Array.isArray(it.RepoTags) || !it.RepoTags.every((t) => typeof t === 'string'))
    ) {
      throw bad('RepoTags is not a list of names');
    }
    return {
      Config: it.Config,
      RepoTags: (it.RepoTags as string[] | null | undefined) ?? null,
      Layers: it.Layers as string[],
      ...(typeof it.LayerSources === 'object' && it.LayerSources !== null
        ? { LayerSources: it.LayerSources as Record<string, Descriptor> }
        : {}),
    };
  });
}

function layerType(head: Buffer): string {
  if (head[0] === 0x1f && head[1] === 0x8b) return MediaTypes.ociLayerGzip;
  if (head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd)
    return MediaTypes.ociLayerZstd;
  return MediaTypes.ociLayer;
}

async function hashEntry(tar: TarIndex, e: TarIndexEntry, o: RunOptions): Promise<Digest> {
  const h = createHash('sha256');
  for await (const chunk of tar.open(e, o)) h.update(chunk as Buffer);
  return `sha256:${h.digest('hex')}` as Digest;
}

/**
 * Opens a docker archive (`docker save` output, any version: legacy `<id>/layer.tar`, layers
 * linked to other layers' files, Docker 25's combined OCI layout) for loading. Does I/O: the
 * tar is indexed once (headers only), configs are read, and layer files whose path does not
 * name their digest are hashed (streamed). Each image's config stays byte-identical, so its
 * digest — the docker image ID — survives a load; its manifest is the archive's own when the
 * archive carries one (Docker 25), else an OCI manifest built here, with uncompressed layers
 * typed `application/vnd.oci.image.layer.v1.tar` (docker's `rootfs.diff.tar` is not a
 * registered type) and gzip/zstd ones typed by their content.
 * Blobs are then read as byte ranges of the archive (`open`).
 * @throws DRAY_INVALID_ARCHIVE for a missing or `null` manifest.json, missing files, link
 *   cycles; DRAY_INVALID_MANIFEST for a bad config or diff_ids that do not match the layers;
 *   DRAY_DIGEST_MISMATCH when an uncompressed layer is not its diff_id; DRAY_NOT_FOUND when
 *   `o.tag` names no image; DRAY_ABORTED.
 */
export async function readDockerArchive(
  file: string,
  o: ReadDockerArchiveOptions = {},
): Promise<DockerArchive> {
  const run: RunOptions = o.signal ? { signal: o.signal } : {};
  const tar = await indexTar(file, run);
  const mj = tar.lookup('manifest.json');
  if (!mj) {
    throw invalidArchive(file, 'no manifest.json', {
      hint: tar.lookup('repositories')
        ? 'this is a pre-1.10 docker save archive (repositories only), which dray does not load; re-save it with a newer docker'
        : "expected the output of 'docker save'",
    });
  }
  let items = parseManifestJson(file, await tar.read(mj, maxManifestJsonBytes));
  if (o.tag !== undefined) {
    const tag = o.tag;
    const matching = items.filter((it) => (it.RepoTags ?? []).some((t) => sameReference(t, tag)));
    if (matching.length === 0)
      throw notFound(
        file,
        tag,
        items.flatMap((it) => it.RepoTags ?? []),
      );
    items = matching;
  }

  const byDigest = new Map<string, TarIndexEntry>();
  const docs = new Map<string, Buffer>();
  const ownManifests = await findOwnManifests(tar, run);
  const images: DockerArchiveImage[] = [];
  for (const it of items) {
    throwIfAborted(o.signal);
    const ce = lookupOrFail(tar, it.Config, file);
    const configBytes = await tar.read(ce, maxConfigBytes);
    const config = parseImageConfig(configBytes);
    const configDigest = digestOf(configBytes);
    checkDiffIds(config, it.Layers.length, `image ${configDigest} in ${file}`);
    byDigest.set(configDigest, ce);
    const configDesc: Descriptor = {
      mediaType: MediaTypes.ociConfig,
      digest: configDigest,
      size: configBytes.length,
    };
    const diffIds = config.rootfs.diff_ids;
    const layers: Descriptor[] = [];
    for (const [i, p] of it.Layers.entries()) {
      const diffId = diffIds[i] as Digest;
      const source = it.LayerSources?.[diffId];
      if (source && foreignTypes.has(source.mediaType)) {
        layers.push(source);
        continue;
      }
      const le = lookupOrFail(tar, p, file);
      const mediaType = layerType(await tar.head(le, 4));
      const named = blobPathRe.exec(p.replace(/^\.?\/+/, ''));
      // A Docker 25 blob path names its digest, which copyGraph verifies; a legacy
      // `<id>/layer.tar` must be hashed to be addressed at all.
      const digest =
        named?.[1] && isDigest(`sha256:${named[1]}`)
          ? (`sha256:${named[1]}` as Digest)
          : await hashEntry(tar, le, run);
      if (mediaType === MediaTypes.ociLayer && digest !== diffId) {
        throw new DrayError(
          'DRAY_DIGEST_MISMATCH',
          `layer ${p} in ${file}: content is ${digest}, config diff_id is ${diffId}`,
          {
            hint: 'the archive is corrupt or was edited after docker save wrote it',
          },
        );
      }
      byDigest.set(digest, le);
      layers.push({ mediaType, digest, size: le.size });
    }
    const own = ownManifests.find((m) => sameImage(m.manifest, configDigest, layers));
    let manifest: Descriptor;
    if (own) {
      manifest = own.desc;
      byDigest.set(own.desc.digest, own.entry);
    } else {
      const doc: ImageManifest = {
        schemaVersion: 2,
        mediaType: MediaTypes.ociManifest,
        config: configDesc,
        layers,
      };
      const bytes = Buffer.from(JSON.stringify(doc));
      manifest = { mediaType: MediaTypes.ociManifest, digest: digestOf(bytes), size: bytes.length };
      docs.set(manifest.digest, bytes);
    }
    const repoTags = it.RepoTags ?? [];
    images.push({
      repoTags,
      names: repoTags.map((t) => referenceString(normalizeReference(t))),
      manifest,
      config: configDesc,
      layers,
      diffIds: [...diffIds],
    });
  }
  return new OpenDockerArchive(file, tar, images, byDigest, docs);
}

function sameImage(m: ImageManifest, config: Digest, layers: Descriptor[]): boolean {
  return (
    m.config.digest === config &&
    m.layers.length === layers.length &&
    m.layers.every((l, i) => l.digest === layers[i]?.digest)
  );
}

/**
 * The image manifests a Docker 25 archive carries in `blobs/` (named in index.json or not:
 * docker writes `"manifests": null` for untagged images), so a load keeps their digests.
 */
async function findOwnManifests(
  tar: TarIndex,
  o: RunOptions,
): Promise<Array<{ desc: Descriptor; entry: TarIndexEntry; manifest: ImageManifest }>> {
  const ie = tar.lookup('index.json');
  if (!ie || !tar.lookup('oci-layout')) return [];
  const candidates = new Map<string, string | undefined>();
  try {
    for (const m of parseLayoutIndex(await tar.read(ie, 4 * 1024 * 1024)).manifests) {
      if (isManifestType(m.mediaType)) candidates.set(m.digest, m.mediaType);
    }
  } catch {
    // A broken index.json does not stop a docker load, which reads manifest.json only.
  }
  for (const [name, e] of tar.entries) {
    const m = blobPathRe.exec(name);
    if (m && e.type === 'file' && e.size <= 64 * 1024 && !candidates.has(`sha256:${m[1]}`)) {
      candidates.set(`sha256:${m[1]}`, undefined);
    }
  }
  const out: Array<{ desc: Descriptor; entry: TarIndexEntry; manifest: ImageManifest }> = [];
  for (const [digest, mediaType] of candidates) {
    throwIfAborted(o.signal);
    const entry = tar.lookup(`blobs/sha256/${digest.slice(7)}`);
    if (!entry || entry.size > 4 * 1024 * 1024) continue;
    const bytes = await tar.read(entry, 4 * 1024 * 1024);
    if (bytes[0] !== 0x7b || digestOf(bytes) !== digest) continue; // not JSON, or not its name
    try {
      const parsed = parseDocument(bytes, mediaType);
      if (parsed.kind !== 'manifest') continue;
      out.push({
        desc: { mediaType: parsed.mediaType, digest: digest as Digest, size: bytes.length },
        entry,
        manifest: parsed.manifest,
      });
    } catch {
      // Not a manifest (a config, a foreign document): not a candidate.
    }
  }
  return out;
}

function lookupOrFail(tar: TarIndex, p: string, file: string): TarIndexEntry {
  const e = tar.lookup(p);
  if (!e) throw invalidArchive(file, `${p} is listed in manifest.json but not in the archive`);
  return e;
}

function notFound(file: string, tag: string, tags: string[]): DrayError {
  return new DrayError('DRAY_NOT_FOUND', `image ${tag} not found in docker archive ${file}`, {
    hint: tags.length > 0 ? `it holds: ${tags.join(', ')}` : 'it holds no tagged images',
  });
}

class OpenDockerArchive implements DockerArchive {
  readonly file: string;
  readonly images: readonly DockerArchiveImage[];
  readonly #tar: TarIndex;
  readonly #blobs: Map<string, TarIndexEntry>;
  readonly #docs: Map<string, Buffer>;

  constructor(
    file: string,
    tar: TarIndex,
    images: DockerArchiveImage[],
    blobs: Map<string, TarIndexEntry>,
    docs: Map<string, Buffer>,
  ) {
    this.file = file;
    this.#tar = tar;
    this.images = images;
    this.#blobs = blobs;
    this.#docs = docs;
  }

  image(tag?: string): DockerArchiveImage {
    if (tag === undefined) {
      const [only, ...rest] = this.images;
      if (!only) throw new DrayError('DRAY_NOT_FOUND', `docker archive ${this.file} holds no images`);
      if (rest.length > 0) {
        throw new DrayError(
          'DRAY_INVALID_ARGUMENT',
          `docker archive ${this.file} holds ${this.images.length} images: name the one to use`,
          { hint: `it holds: ${this.images.flatMap((i) => i.repoTags).join(', ') || '(untagged images)'}` },
        );
      }
      return only;
    }
    const found = this.images.find((i) => i.repoTags.some((t) => sameReference(t, tag)));
    if (!found)
      throw notFound(
        this.file,
        tag,
        this.images.flatMap((i) => i.repoTags),
      );
    return found;
  }

  async open(d: Descriptor, o: RunOptions & { offset?: number } = {}): Promise<Readable> {
    throwIfAborted(o.signal, `reading blob ${d.digest}`);
    const doc = this.#docs.get(d.digest);
    if (doc) return Readable.from([doc.subarray(o.offset ?? 0)]);
    return this.#tar.openBlob(this.#blobs.get(d.digest), d, `docker archive ${this.file}`, o);
  }
}
