/**
 * Helpers for the conversion's tests: a `resolveImage` callback serving fixed image configs
 * (what a registry would answer), and a converter that returns the graph as plain vertices.
 */
import { createHash } from 'node:crypto';
import type { ContainerConfig, HistoryEntry, ImageConfig, Platform } from '../../../oci/index.ts';
import { type GraphDefinition, marshalGraph } from '../../../solver/index.ts';
import { type DockerfileGraph, type DockerfileToGraphOptions, dockerfileToGraph } from './convert.ts';

export const linuxAmd64: Platform = { os: 'linux', architecture: 'amd64' };

/** An image config with one layer and the given runtime config. */
export function imageConfig(
  config: ContainerConfig = {},
  o: { platform?: Platform; history?: HistoryEntry[]; layers?: number } = {},
): ImageConfig {
  const p = o.platform ?? linuxAmd64;
  const layers = o.layers ?? 1;
  return {
    architecture: p.architecture,
    os: p.os,
    ...(p.variant ? { variant: p.variant } : {}),
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], ...config },
    rootfs: {
      type: 'layers',
      diff_ids: Array.from(
        { length: layers },
        (_, i) => `sha256:${String(i).repeat(64).slice(0, 64)}` as never,
      ),
    },
    history:
      o.history ??
      Array.from({ length: layers }, (_, i) => ({
        created: '2024-01-02T03:04:05Z',
        created_by: `layer ${i}`,
      })),
  };
}

/** The digest the fake registry reports for a ref. */
export function fakeDigest(ref: string): string {
  return `sha256:${createHash('sha256').update(ref).digest('hex')}`;
}

/** A resolver that knows `images` by normalised ref (default: a busybox-like image of the asked platform). */
export function fakeResolver(images: Record<string, ImageConfig> = {}) {
  const calls: Array<{ ref: string; platform: Platform; pull: boolean }> = [];
  const resolveImage: DockerfileToGraphOptions['resolveImage'] = async (ref, o) => {
    calls.push({ ref, platform: o.platform, pull: o.pull });
    const config = images[ref] ?? imageConfig({ Cmd: ['sh'] }, { platform: o.platform });
    return { ref, digest: fakeDigest(ref), config };
  };
  return { resolveImage, calls };
}

export interface Converted {
  graph: DockerfileGraph;
  vertices: GraphDefinition['vertices'];
  /** The vertex with this progress name. */
  named(name: string): GraphDefinition['vertices'][number];
  names: string[];
  calls: ReturnType<typeof fakeResolver>['calls'];
}

/** Converts `dockerfile` for linux/amd64 with a fake resolver. */
export async function convert(
  dockerfile: string,
  o: Partial<DockerfileToGraphOptions> & { images?: Record<string, ImageConfig> } = {},
): Promise<Converted> {
  const { images, ...rest } = o;
  const r = fakeResolver(images);
  const graph = await dockerfileToGraph({
    dockerfile,
    targetPlatform: linuxAmd64,
    buildPlatform: linuxAmd64,
    resolveImage: r.resolveImage,
    ...rest,
  });
  const vertices = graph.state.vertex ? marshalGraph(graph.state.vertex).vertices : [];
  const names = vertices.flatMap((v) => (v.name === undefined ? [] : [v.name]));
  return {
    graph,
    vertices,
    names,
    calls: r.calls,
    named(name) {
      const v = vertices.find((x) => x.name === name);
      if (!v) throw new Error(`no vertex named ${JSON.stringify(name)}; have ${JSON.stringify(names)}`);
      return v;
    },
  };
}
