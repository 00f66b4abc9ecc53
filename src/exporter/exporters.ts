import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { applyLayer, createTarWriter, flattenLayers, readTar } from '../archive/index.ts';
import { DrayError } from '../errors.ts';
import { copyGraph } from '../graph/index.ts';
import { OciLayout, writeDockerArchive, writeOciArchive } from '../layout/index.ts';
import type { BlobSource, Descriptor } from '../oci/index.ts';
import { oneOff, type RunOptions } from '../progress/index.ts';
import { normalizeReference } from '../reference/index.ts';
import { writeToDestination } from './destination.ts';
import { type PlatformImage, platformDirName, platformImages } from './platforms.ts';
import type { ExporterInstance, ExporterOptions, ExportInput, ExportOutcome } from './types.ts';

/**
 * Parses exporter options into an instance (BuildKit's `Exporter.Resolve`): the options are
 * checked here, once, so a bad export is refused before any work starts.
 * @throws DRAY_INVALID_ARGUMENT for options that cannot work.
 */
export function resolveExporter(o: ExporterOptions): ExporterInstance {
  switch (o.type) {
    case 'image':
      if (o.names.length === 0 && o.push) {
        throw new DrayError('DRAY_INVALID_ARGUMENT', 'cannot push an image without a name', {
          hint: 'give a name (-t NAME)',
        });
      }
      return { type: 'image', export: (input, run = {}) => exportImage(o, input, run) };
    case 'oci':
      return { type: 'oci', export: (input, run = {}) => exportOci(o, input, run) };
    case 'docker':
      return { type: 'docker', export: (input, run = {}) => exportDocker(o, input, run) };
    case 'tar':
      return { type: 'tar', export: (input, run = {}) => exportTar(o, input, run) };
    case 'local':
      if (!o.dest)
        throw new DrayError('DRAY_INVALID_ARGUMENT', 'the local exporter needs a destination directory');
      return { type: 'local', export: (input, run = {}) => exportLocal(o, input, run) };
  }
}

type Options<T extends ExporterOptions['type']> = Extract<ExporterOptions, { type: T }>;

async function exportImage(o: Options<'image'>, input: ExportInput, run: RunOptions): Promise<ExportOutcome> {
  const done = oneOff(run.progress, 'exporting to image');
  try {
    if ((input.source as unknown) !== o.content) await copyGraph(input.source, o.content, input.root, run);
    for (const name of o.names) await o.images.tag(name, input.root);
  } catch (e) {
    done(e as Error);
  }
  done(undefined);
  const push = o.push;
  return {
    descriptor: input.root,
    ...(push
      ? {
          finalize: async (f: RunOptions = {}) => {
            for (const name of o.names) {
              const ref = normalizeReference(name);
              const repo = push.client.repository(ref);
              const step = oneOff(f.progress, `pushing ${name}`);
              try {
                await copyGraph(o.content, repo, input.root, { ...f, words: 'push' });
                if (ref.tag) await repo.tag(ref.tag, input.root, f);
              } catch (e) {
                step(e as Error);
              }
              step(undefined);
            }
          },
        }
      : {}),
  };
}

async function exportOci(o: Options<'oci'>, input: ExportInput, run: RunOptions): Promise<ExportOutcome> {
  const done = oneOff(run.progress, 'exporting to oci image format');
  try {
    if (o.dest.kind === 'dir') {
      const layout = await OciLayout.create(o.dest.path, run);
      await copyGraph(input.source, layout, input.root, {
        ...run,
        ...(o.platform ? { platform: o.platform } : {}),
      });
      if (o.names?.length) for (const n of o.names) await layout.tag(n, input.root, run);
      else await layout.tag('', input.root, run).catch(() => {});
    } else {
      const images = (o.names?.length ? o.names : [undefined]).map((name) => ({
        ...(name ? { name } : {}),
        source: input.source,
        root: input.root,
        ...(o.platform ? { platform: o.platform } : {}),
      }));
      await writeToDestination(o.dest, (out) => writeOciArchive(out, images, run));
    }
  } catch (e) {
    done(e as Error);
  }
  return done({ descriptor: input.root });
}

async function exportDocker(
  o: Options<'docker'>,
  input: ExportInput,
  run: RunOptions,
): Promise<ExportOutcome> {
  const done = oneOff(run.progress, 'exporting to docker image format');
  try {
    await writeToDestination(o.dest, (out) =>
      writeDockerArchive(
        out,
        [
          {
            tags: o.names,
            source: input.source,
            root: input.root,
            ...(o.platform ? { platform: o.platform } : {}),
          },
        ],
        run,
      ),
    );
  } catch (e) {
    done(e as Error);
  }
  return done({ descriptor: input.root });
}

function layerOpeners(
  source: BlobSource,
  img: PlatformImage,
  run: RunOptions,
): Array<() => Promise<Readable>> {
  return img.manifest.layers.map((l: Descriptor) => () => source.open(l, run));
}

async function exportTar(o: Options<'tar'>, input: ExportInput, run: RunOptions): Promise<ExportOutcome> {
  const done = oneOff(run.progress, 'exporting to client tarball');
  try {
    const imgs = await platformImages(input.source, input.root, o.platforms, run);
    const flattenOptions = {
      ...run,
      ...(o.uidMap ? { uidMap: o.uidMap } : {}),
      ...(o.gidMap ? { gidMap: o.gidMap } : {}),
    };
    await writeToDestination(o.dest, async (out) => {
      if (imgs.length === 1 && o.platforms !== 'all' && (o.platforms?.length ?? 1) === 1) {
        await pipeline(
          flattenLayers(layerOpeners(input.source, imgs[0]!, run), flattenOptions),
          out,
          signalOf(run),
        );
        return;
      }
      // Several platforms: one tar, each platform's root under its own directory.
      const tw = createTarWriter(signalOf(run));
      const piped = pipeline(tw.readable, out, signalOf(run));
      try {
        for (const img of imgs) {
          const prefix = platformDirName(img.platform);
          await tw.add({ name: prefix, type: 'directory', mode: 0o755, uid: 0, gid: 0, size: 0, mtime: 0 });
          for await (const entry of readTar(
            flattenLayers(layerOpeners(input.source, img, run), flattenOptions),
            run,
          )) {
            const h = entry.header;
            if (h.name === '.' || h.name === '') continue;
            const linkname = h.type === 'link' && h.linkname ? `${prefix}/${h.linkname}` : h.linkname;
            await tw.add(
              { ...h, name: `${prefix}/${h.name}`, ...(linkname !== undefined ? { linkname } : {}) },
              h.type === 'file' ? entry.body : undefined,
            );
          }
        }
        await tw.finish();
      } catch (e) {
        tw.readable.destroy(e as Error);
        await piped.catch(() => {});
        throw e;
      }
      await piped;
    });
  } catch (e) {
    done(e as Error);
  }
  return done({ descriptor: input.root });
}

async function exportLocal(o: Options<'local'>, input: ExportInput, run: RunOptions): Promise<ExportOutcome> {
  const done = oneOff(run.progress, 'copying files');
  try {
    const imgs = await platformImages(input.source, input.root, o.platforms, run);
    const split = imgs.length > 1 || o.platforms === 'all' || (o.platforms?.length ?? 1) > 1;
    for (const img of imgs) {
      const dir = split ? join(o.dest, platformDirName(img.platform)) : o.dest;
      await mkdir(dir, { recursive: true });
      for (const l of img.manifest.layers) {
        await applyLayer(dir, await input.source.open(l, run), { ...run, diffId: false });
      }
    }
  } catch (e) {
    done(e as Error);
  }
  return done({ descriptor: input.root });
}

function signalOf(run: RunOptions): { signal?: AbortSignal } {
  return run.signal ? { signal: run.signal } : {};
}

/** A Writable that discards everything (for dry runs and tests). */
export function discard(): Writable {
  return new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });
}
