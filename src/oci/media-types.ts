/** Media types dray reads and writes (OCI image-spec media-types.md, Docker image manifest v2 schema 2). */
export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributable: 'application/vnd.oci.image.layer.nondistributable.v1.tar',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  ociLayout: 'application/vnd.oci.layout.header.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerLayerZstd: 'application/vnd.docker.image.rootfs.diff.tar.zstd',
  dockerSchema1Manifest: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1SignedManifest: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
  buildkitCacheConfig: 'application/vnd.buildkit.cacheconfig.v0',
} as const;

export type MediaType = (typeof MediaTypes)[keyof typeof MediaTypes];

const manifestTypes = new Set<string>([MediaTypes.ociManifest, MediaTypes.dockerManifest]);
const indexTypes = new Set<string>([MediaTypes.ociIndex, MediaTypes.dockerManifestList]);
const schema1Types = new Set<string>([
  MediaTypes.dockerSchema1Manifest,
  MediaTypes.dockerSchema1SignedManifest,
  'application/json', // schema 1 was often served as plain JSON
]);

/** An image manifest (OCI or Docker schema 2). */
export function isManifestType(mt: string | undefined): boolean {
  return mt !== undefined && manifestTypes.has(mt);
}

/** An index / manifest list. */
export function isIndexType(mt: string | undefined): boolean {
  return mt !== undefined && indexTypes.has(mt);
}

/** A document dray walks into (manifest or index); everything else is a leaf blob. */
export function isDocumentType(mt: string | undefined): boolean {
  return isManifestType(mt) || isIndexType(mt);
}

/** Docker schema 1 (unsupported: rejected with a clear error). */
export function isSchema1Type(mt: string | undefined): boolean {
  return mt !== undefined && schema1Types.has(mt);
}

/** The Accept header a client sends for manifests: every type dray can read. */
export const manifestAccept: readonly string[] = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
];
