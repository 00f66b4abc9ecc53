/** exporter: BuildKit's exporter seam — resolve options once, then export a result: image, oci, docker, tar, local. */
export { writeToDestination } from './destination.ts';
export { resolveExporter } from './exporters.ts';
export type { PlatformImage } from './platforms.ts';
export { platformDirName, platformImages } from './platforms.ts';
export type {
  Destination,
  ExporterInstance,
  ExporterOptions,
  ExporterType,
  ExportInput,
  ExportOutcome,
} from './types.ts';
