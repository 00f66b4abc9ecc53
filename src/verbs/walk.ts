import { isDrayError } from '../errors.ts';
import {
  type BlobSource,
  type Descriptor,
  isDocumentType,
  parseDocument,
  readDocument,
} from '../oci/index.ts';
import type { RunOptions } from '../progress/index.ts';

/**
 * Every descriptor reachable from `root` in `src` (root included), children after
 * parents. Children the source lacks are listed but not descended into (a single-platform
 * pull keeps the index while holding one of its manifests).
 */
export async function reachable(
  src: BlobSource,
  root: Descriptor,
  o: RunOptions = {},
): Promise<Descriptor[]> {
  const seen = new Map<string, Descriptor>();
  const visit = async (d: Descriptor): Promise<void> => {
    if (seen.has(d.digest)) return;
    seen.set(d.digest, d);
    if (!isDocumentType(d.mediaType)) return;
    let bytes: Buffer;
    try {
      bytes = await readDocument(src, d, o);
    } catch (e) {
      if (isDrayError(e, 'DRAY_BLOB_UNKNOWN', 'DRAY_NOT_FOUND')) return;
      throw e;
    }
    const doc = parseDocument(bytes, d.mediaType);
    const children =
      doc.kind === 'manifest' ? [doc.manifest.config, ...doc.manifest.layers] : doc.index.manifests;
    for (const c of children) await visit(c);
  };
  await visit(root);
  return [...seen.values()];
}
