import { isDrayError } from '../errors.ts';
import type { Descriptor } from '../oci/index.ts';
import { normalizeReference, parseReference, referenceString } from '../reference/index.ts';

/** image-spec annotations.md: the name of a reference in an image layout's index. */
export const refNameAnnotation = 'org.opencontainers.image.ref.name';
/** containerd's full image name annotation; docker 25 `save` and BuildKit's oci exporter write it. */
export const imageNameAnnotation = 'io.containerd.image.name';

/** `name` as a normalised full reference string, or undefined when it is not a reference with a repository. */
function fullName(name: string): string | undefined {
  // A bare word ("1", "latest") is a layout tag, not a repository: only names with a
  // repository separator or a registry are taken as docker references.
  if (!/[/:@]/.test(name)) return undefined;
  try {
    parseReference(name);
    return referenceString(normalizeReference(name));
  } catch (e) {
    if (isDrayError(e, 'DRAY_INVALID_REFERENCE')) return undefined;
    throw e;
  }
}

/**
 * The index.json annotations dray writes for an image named `name`, as docker 25 `save` and
 * BuildKit's oci exporter do: a docker reference (`app:1.2`, `registry/x/app:1.2`) gets its
 * full normalised name in `io.containerd.image.name` and its tag in
 * `org.opencontainers.image.ref.name` (so `skopeo inspect oci:DIR:1.2` and `umoci --image DIR:1.2`
 * find it); any other name (`v1`, `latest`) is written verbatim as the ref name. No I/O.
 */
export function nameAnnotations(name: string): Record<string, string> {
  const full = fullName(name);
  if (full === undefined) return { [refNameAnnotation]: name };
  const r = normalizeReference(name);
  const tag = r.tag ?? r.digest ?? name;
  return { [imageNameAnnotation]: full, [refNameAnnotation]: tag };
}

/**
 * Whether the index entry `d` answers to `name`: an exact ref name, an exact or normalised
 * containerd image name, or a ref name that is itself a full reference equal to `name`
 * once both are normalised (`test_image_1` = `index.docker.io/library/test_image_1:latest`). No I/O.
 */
export function entryMatches(d: Descriptor, name: string): boolean {
  const a = d.annotations ?? {};
  const ref = a[refNameAnnotation];
  const img = a[imageNameAnnotation];
  if (img === undefined && ref === name) return true;
  if (img === name) return true;
  const full = fullName(name);
  if (full === undefined) return ref === name;
  if (img !== undefined) return fullName(img) === full;
  return ref !== undefined && fullName(ref) === full;
}

/** The name an index entry is known by (containerd name, else ref name), for listings and messages. */
export function entryName(d: Descriptor): string | undefined {
  return d.annotations?.[imageNameAnnotation] ?? d.annotations?.[refNameAnnotation];
}

/** Whether two names denote the same image name (normalised docker references, else exact). */
export function sameName(a: string, b: string): boolean {
  if (a === b) return true;
  const fa = fullName(a);
  return fa !== undefined && fa === fullName(b);
}

/**
 * Whether two docker references name the same image once normalised (`x` = `x:latest` =
 * `index.docker.io/library/x:latest`): how docker-archive `RepoTags` are matched. No I/O.
 */
export function sameReference(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    return referenceString(normalizeReference(a)) === referenceString(normalizeReference(b));
  } catch (e) {
    if (isDrayError(e, 'DRAY_INVALID_REFERENCE')) return false;
    throw e;
  }
}
