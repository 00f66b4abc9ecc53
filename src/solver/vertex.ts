import { type Digest, digestOf } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import type { Op } from './ops.ts';

/**
 * A vertex: an op, its inputs, and display metadata. Its digest covers the op and the
 * inputs' digests only (BuildKit's LLB digest leaves descriptions and cache flags in
 * metadata the same way), so the same graph built in two processes has the same digests.
 */
export interface Vertex {
  readonly op: Op;
  readonly inputs: readonly Vertex[];
  /** Progress name (`[2/4] RUN make`); absent for internal vertices, shown by op. */
  readonly name?: string;
  /** Run it even when a cache record exists (the result then replaces the record). */
  readonly noCache?: boolean;
  /** Free-form facts the frontend wants kept in build history (instruction text, stage). */
  readonly meta?: Readonly<Record<string, string>>;
  /** sha256 of `canonicalJson({ op, inputs: input digests })`. */
  readonly digest: Digest;
}

export interface VertexOptions {
  name?: string;
  noCache?: boolean;
  meta?: Record<string, string>;
}

/** Makes a vertex and computes its digest. No I/O. */
export function vertex(op: Op, inputs: readonly Vertex[] = [], o: VertexOptions = {}): Vertex {
  const digest = digestOf(Buffer.from(canonicalJson({ op, inputs: inputs.map((i) => i.digest) })));
  return {
    op,
    inputs,
    digest,
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.noCache ? { noCache: true } : {}),
    ...(o.meta ? { meta: o.meta } : {}),
  };
}

/**
 * JSON with object keys sorted and `undefined` members left out, so equal values serialise
 * to equal bytes whatever order their fields were set in. No I/O.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) {
      const x = (v as Record<string, unknown>)[k];
      if (x !== undefined) out[k] = sortKeys(x);
    }
    return out;
  }
  return v;
}

/** Every vertex reachable from `roots`, inputs before their users, each once. No I/O. */
export function topoSort(roots: readonly Vertex[]): Vertex[] {
  const seen = new Set<string>();
  const out: Vertex[] = [];
  const visit = (v: Vertex): void => {
    if (seen.has(v.digest)) return;
    seen.add(v.digest);
    for (const i of v.inputs) visit(i);
    out.push(v);
  };
  for (const r of roots) visit(r);
  return out;
}

/** Serialisable form of a graph: vertices in topological order, inputs by index. */
export interface GraphDefinition {
  vertices: Array<{
    op: Op;
    inputs: number[];
    name?: string;
    noCache?: boolean;
    meta?: Record<string, string>;
  }>;
}

/** The graph under `root` as plain JSON (the last vertex is the root). No I/O. */
export function marshalGraph(root: Vertex): GraphDefinition {
  const order = topoSort([root]);
  const index = new Map(order.map((v, i) => [v.digest, i]));
  return {
    vertices: order.map((v) => ({
      op: v.op,
      inputs: v.inputs.map((i) => index.get(i.digest) as number),
      ...(v.name !== undefined ? { name: v.name } : {}),
      ...(v.noCache ? { noCache: true } : {}),
      ...(v.meta ? { meta: { ...v.meta } } : {}),
    })),
  };
}

/** Rebuilds the vertices of a {@link marshalGraph} definition; returns the root. No I/O. */
export function unmarshalGraph(def: GraphDefinition): Vertex {
  const built: Vertex[] = [];
  for (const d of def.vertices) {
    const inputs = d.inputs.map((i) => {
      const v = built[i];
      if (!v)
        throw new DrayError(
          'DRAY_INVALID_ARGUMENT',
          `graph definition: input ${i} is not defined before its use`,
        );
      return v;
    });
    built.push(
      vertex(d.op, inputs, {
        ...(d.name !== undefined ? { name: d.name } : {}),
        ...(d.noCache ? { noCache: true } : {}),
        ...(d.meta ? { meta: d.meta } : {}),
      }),
    );
  }
  const root = built.at(-1);
  if (!root) throw new DrayError('DRAY_INVALID_ARGUMENT', 'graph definition: no vertices');
  return root;
}
