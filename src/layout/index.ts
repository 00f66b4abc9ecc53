/**
 * layout: images as files other tools read — the OCI image layout (a directory, or a tar of
 * one: an "oci-archive") and the docker archive (`docker save` / `docker load`). Each is a
 * BlobSource and/or BlobTarget, so save and load are `copyGraph` between them and a store.
 */
export type {
  DockerArchive,
  DockerArchiveImage,
  DockerArchiveImageInput,
  DockerManifestItem,
  ReadDockerArchiveOptions,
} from './docker-archive.ts';
export { readDockerArchive, writeDockerArchive } from './docker-archive.ts';
export { entryMatches, entryName, imageNameAnnotation, nameAnnotations, refNameAnnotation } from './names.ts';
export type { OciArchiveImage } from './oci-archive.ts';
export { OciArchive, spoolToFile, writeOciArchive } from './oci-archive.ts';
export { OciLayout, ociLayoutFileContent, parseLayoutIndex, resolveInIndex } from './oci-layout.ts';
export type { TarIndexEntry } from './tar-index.ts';
export { indexTar, TarIndex } from './tar-index.ts';
export type { ArchiveWriteOptions } from './tar-target.ts';
