import type { Writable } from 'node:stream';
import type { ContentStore } from '../content/index.ts';
import type { ImageStore } from '../image/index.ts';
import type { BlobSource, Descriptor, Platform } from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';
import type { RegistryClient } from '../registry/index.ts';

/** What an exporter exports: an image (manifest or index) whose blobs `source` serves. */
export interface ExportInput {
  source: BlobSource;
  root: Descriptor;
}

/**
 * What an export produced. `finalize` is work that may wait (a push), as BuildKit's
 * FinalizeFunc: optional, and nothing leaks when it is never called.
 */
export interface ExportOutcome {
  /** The root written (the image exporter's manifest, an archive's image). */
  descriptor?: Descriptor;
  finalize?: (o?: RunOptions) => Promise<void>;
}

export type ExporterType = 'image' | 'oci' | 'docker' | 'tar' | 'local';

/** Where an archive goes: a file (written atomically) or a stream (stdout). */
export type Destination = { kind: 'file'; path: string } | { kind: 'stream'; stream: Writable };

/** Exporter options, one variant per type (parsed from `--output type=…` by the CLI only). */
export type ExporterOptions =
  | {
      type: 'image';
      content: ContentStore;
      images: ImageStore;
      /** Full normalised names to give the image. */
      names: string[];
      /** Push each name after storing (a finalize step). */
      push?: { client: RegistryClient };
    }
  | {
      type: 'oci';
      /** An OCI layout: a tar archive, or (`dir`) a directory. */
      dest: Destination | { kind: 'dir'; path: string };
      names?: string[];
      /** For an index: only this platform (default: every platform the source has). */
      platform?: Platform;
    }
  | { type: 'docker'; dest: Destination; names: string[]; platform?: Platform }
  | {
      type: 'tar';
      dest: Destination;
      /** Several platforms go into one subdirectory each (`os_arch[_variant]`); default: the host platform only. */
      platforms?: Platform[] | 'all';
      uidMap?: Array<{ containerID: number; hostID: number; size: number }>;
      gidMap?: Array<{ containerID: number; hostID: number; size: number }>;
    }
  | { type: 'local'; dest: string; platforms?: Platform[] | 'all' };

/** A resolved exporter (BuildKit's ExporterInstance). */
export interface ExporterInstance {
  readonly type: ExporterType;
  export(input: ExportInput, o?: RunOptions): Promise<ExportOutcome>;
}
