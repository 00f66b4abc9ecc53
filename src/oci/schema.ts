import * as z from 'zod/mini';
import en from 'zod/v4/locales/en.js';
import { type Digest, parseDigest } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { isDocumentType, isIndexType, isManifestType, MediaTypes } from './media-types.ts';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest, Platform } from './types.ts';

/**
 * Validating parsers for every OCI/Docker JSON document dray reads from outside (registries,
 * OCI layouts, docker archives, the content store). Each parser takes the raw bytes, so the
 * bytes stay the one source of truth for digests, and returns a value typed as in `types.ts`.
 *
 * The rules follow the OCI image-spec JSON schemas (schema/*.json) plus the Go checks upstream's
 * validator runs before them (schema/validator.go), with these deliberate differences, each
 * pinned by `conformance.test.ts`:
 * - digests must use an algorithm dray can verify (sha256, sha512): a descriptor dray cannot
 *   verify is refused up front, as containerd's go-digest `Validate` does, instead of failing
 *   later in the middle of a copy;
 * - an image manifest may have an empty `layers` array: manifest.md only says layers SHOULD
 *   have one entry, and BuildKit and go-containerregistry write `[]` for images with no
 *   filesystem changes (a `FROM scratch` image with only metadata);
 * - `null` is accepted (and dropped) for the container-config maps and lists Docker writes as
 *   `null` (`Env`, `ExposedPorts`, `Volumes`, `Labels`), as Go's decoder accepts it.
 */

// OCI defs-descriptor.json "mediaType": RFC 6838 section 4.2 restricted-name, type/subtype.
const mediaTypeRe = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
// Go decodes descriptor `data` ([]byte) with base64.StdEncoding: standard alphabet, padded.
const base64Re = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
// RFC 3339 date-time, the JSON-schema "date-time" format and what Go's time.Time decodes.
const dateTimeRe =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/;
// config.md Env: "in the format of VARNAME=VARVALUE" (upstream's Go check `^[^=]+=.*$`).
const envRe = /^[^=]+=.*$/;
const uriSchemeRe = /^[A-Za-z][A-Za-z0-9+.-]*:\S*$/;

/** True for an RFC 3339 date-time with in-range fields (the JSON-schema `date-time` format). */
export function isRfc3339(s: string): boolean {
  const m = dateTimeRe.exec(s);
  if (!m) return false;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth) return false;
  // 60 = leap second, allowed by RFC 3339 section 5.6.
  if (hour > 23 || minute > 59 || second > 60) return false;
  if (m[7] !== undefined && (Number(m[7]) > 23 || Number(m[8]) > 59)) return false;
  return true;
}

/** True for an absolute URI (RFC 3986 scheme + rest), the JSON-schema `uri` format. */
export function isAbsoluteUri(s: string): boolean {
  return uriSchemeRe.test(s) && URL.canParse(s);
}

const mediaTypeSchema = z
  .string()
  .check(z.regex(mediaTypeRe, 'invalid media type: must be type/subtype (RFC 6838)'));

const digestSchema = z.pipe(
  z.string(),
  z.transform((s: string, ctx): Digest => {
    try {
      return parseDigest(s);
    } catch (e) {
      ctx.issues.push({ code: 'custom', message: e instanceof Error ? e.message : String(e), input: s });
      return z.NEVER;
    }
  }),
);

// A size is a byte count: a non-negative integer that a JS number holds exactly.
const sizeSchema = z.int().check(z.nonnegative());
const annotationsSchema = z.record(z.string(), z.string());
const stringList = z.array(z.string());

/** OCI image-index.md `platform`. */
export const platformSchema: z.ZodMiniType<Platform> = z.object({
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(stringList),
  variant: z.optional(z.string()),
  features: z.optional(stringList),
});

/** OCI descriptor.md content descriptor (also Docker schema 2's descriptor). */
export const descriptorSchema: z.ZodMiniType<Descriptor> = z.object({
  mediaType: mediaTypeSchema,
  digest: digestSchema,
  size: sizeSchema,
  urls: z.optional(z.array(z.string().check(z.refine(isAbsoluteUri, 'must be an absolute URI')))),
  annotations: z.optional(annotationsSchema),
  data: z.optional(z.string().check(z.regex(base64Re, 'must be standard, padded base64'))),
  platform: z.optional(platformSchema),
  artifactType: z.optional(mediaTypeSchema),
});

/** OCI manifest.md image manifest and Docker image manifest v2 schema 2. */
export const imageManifestSchema: z.ZodMiniType<ImageManifest> = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(mediaTypeSchema),
  artifactType: z.optional(mediaTypeSchema),
  config: descriptorSchema,
  layers: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(annotationsSchema),
});

/** OCI image-index.md image index and Docker manifest list. */
export const imageIndexSchema: z.ZodMiniType<ImageIndex> = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.optional(mediaTypeSchema),
  artifactType: z.optional(mediaTypeSchema),
  manifests: z.array(descriptorSchema),
  subject: z.optional(descriptorSchema),
  annotations: z.optional(annotationsSchema),
});

const dateTimeSchema = z.string().check(z.refine(isRfc3339, 'must be an RFC 3339 date-time'));
// Values of ExposedPorts/Volumes are empty objects in practice ("string sets"); Go decodes them
// into struct{}, so anything but an object is refused.
const objectSet = z.record(z.string(), z.looseObject({}));
// Docker writes some of these as null; Go's decoder (and so docker, containerd) reads null as
// absent, so dray does too rather than refusing images docker runs.
const nullAsAbsent = <T extends z.ZodMiniType>(s: T) =>
  z.pipe(
    z.union([s, z.null()]) as z.ZodMiniType<z.output<T> | null>,
    z.transform((v: z.output<T> | null) => v ?? undefined),
  );

const healthcheckSchema = z.looseObject({
  Test: z.optional(stringList),
  Interval: z.optional(z.int()),
  Timeout: z.optional(z.int()),
  StartPeriod: z.optional(z.int()),
  StartInterval: z.optional(z.int()),
  Retries: z.optional(z.int()),
});

const containerConfigSchema = z.pipe(
  z.looseObject({
    User: z.optional(z.string()),
    ExposedPorts: z.optional(nullAsAbsent(objectSet)),
    Env: z.optional(nullAsAbsent(z.array(z.string().check(z.regex(envRe, 'must be VARNAME=VALUE'))))),
    Entrypoint: z.optional(z.nullable(stringList)),
    Cmd: z.optional(z.nullable(stringList)),
    Volumes: z.optional(nullAsAbsent(objectSet)),
    WorkingDir: z.optional(z.string()),
    Labels: z.optional(nullAsAbsent(z.record(z.string(), z.string()))),
    StopSignal: z.optional(z.string()),
    ArgsEscaped: z.optional(z.boolean()),
    Healthcheck: z.optional(healthcheckSchema),
    OnBuild: z.optional(z.nullable(stringList)),
    Shell: z.optional(stringList),
  }),
  // Drop the keys nullAsAbsent emptied, so the result has no `Env: undefined` entries.
  z.transform((c: Record<string, unknown>) => {
    for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
    return c;
  }),
);

const historySchema = z.looseObject({
  created: z.optional(dateTimeSchema),
  created_by: z.optional(z.string()),
  author: z.optional(z.string()),
  comment: z.optional(z.string()),
  empty_layer: z.optional(z.boolean()),
});

/** OCI config.md image config plus Docker's fields; unknown fields are kept. */
export const imageConfigSchema: z.ZodMiniType<ImageConfig> = z.looseObject({
  created: z.optional(dateTimeSchema),
  author: z.optional(z.string()),
  architecture: z.string(),
  os: z.string(),
  'os.version': z.optional(z.string()),
  'os.features': z.optional(stringList),
  variant: z.optional(z.string()),
  config: z.optional(containerConfigSchema),
  rootfs: z.looseObject({ type: z.literal('layers'), diff_ids: z.array(digestSchema) }),
  history: z.optional(z.array(historySchema)),
}) as z.ZodMiniType<ImageConfig>;

/** The `oci-layout` file at the root of an OCI image layout (image-layout.md). */
export interface OciLayoutHeader {
  imageLayoutVersion: '1.0.0';
}

/** image-layout.md `oci-layout`. */
export const ociLayoutHeaderSchema: z.ZodMiniType<OciLayoutHeader> = z.object({
  imageLayoutVersion: z.literal('1.0.0'),
});

/** A manifest or an index, as `parseDocument` tells them apart. */
export type ParsedDocument =
  | { kind: 'manifest'; mediaType: string; manifest: ImageManifest }
  | { kind: 'index'; mediaType: string; index: ImageIndex };

type Kind = ParsedDocument['kind'];
const kindName: Record<Kind, string> = { manifest: 'image manifest', index: 'image index' };

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else if (typeof k === 'string' && /^[A-Za-z_$][\w$]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

// zod's default for a missing key is "expected string, received undefined"; say what it means.
// zod/mini carries no messages of its own: English ones come from zod's locale, per parse
// (a global zod.config would reach into other zod users in the same process).
const english = en().localeError;
const errorMap = (iss: Parameters<typeof english>[0]) =>
  iss.code === 'invalid_type' && iss.input === undefined ? 'required field is missing' : english(iss);

function validate<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
  const r = schema.safeParse(value, { error: errorMap });
  if (r.success) return r.data;
  const [first] = r.error.issues;
  const path = first ? formatPath(first.path) : '';
  // zod says "Invalid input: expected string, received number"; docker wording is lower case.
  const raw = first?.message.replace(/^Invalid input: /, '') ?? 'does not match the schema';
  const msg = raw.charAt(0).toLowerCase() + raw.slice(1);
  const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more problems)` : '';
  throw new DrayError('DRAY_INVALID_MANIFEST', `invalid ${what}: ${path ? `${path}: ` : ''}${msg}${more}`, {
    cause: r.error,
  });
}

// fatal: malformed UTF-8 is refused rather than silently replaced; ignoreBOM keeps a BOM in
// the text so JSON.parse refuses it, as Go's encoding/json does.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeJson(bytes: Uint8Array, what: string): unknown {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch (cause) {
    throw new DrayError('DRAY_INVALID_MANIFEST', `invalid ${what}: not valid UTF-8`, { cause });
  }
  try {
    return JSON.parse(text);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new DrayError('DRAY_INVALID_MANIFEST', `invalid ${what}: malformed JSON: ${detail}`, { cause });
  }
}

function schema1Error(detail: string): DrayError {
  return new DrayError(
    'DRAY_UNSUPPORTED_MEDIA_TYPE',
    `unsupported manifest format: Docker Image Manifest Version 2, Schema 1 (${detail})`,
    {
      hint: 'schema 1 images are deprecated and not supported; re-push the image with a current docker or dray',
    },
  );
}

const schema1MediaTypes = new Set<string>([
  MediaTypes.dockerSchema1Manifest,
  MediaTypes.dockerSchema1SignedManifest,
]);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Schema 1 is recognised by its media types, `schemaVersion: 1`, or its `fsLayers` (the field
// containerd's validateMediaType keys on). `application/json` alone is not enough: registries
// also serve schema 2 and OCI documents with that Content-Type.
function rejectSchema1(doc: unknown, mediaType: string | undefined): void {
  if (mediaType !== undefined && schema1MediaTypes.has(mediaType)) throw schema1Error(mediaType);
  if (!isRecord(doc)) return;
  if (typeof doc.mediaType === 'string' && schema1MediaTypes.has(doc.mediaType))
    throw schema1Error(doc.mediaType);
  if (doc.schemaVersion === 1) throw schema1Error('schemaVersion 1');
  if ('fsLayers' in doc) throw schema1Error('fsLayers');
}

function kindOf(mt: string): Kind {
  return isIndexType(mt) ? 'index' : 'manifest';
}

function mismatch(expected: Kind, mt: string | undefined): DrayError {
  const found: Kind = expected === 'manifest' ? 'index' : 'manifest';
  return new DrayError(
    'DRAY_INVALID_MANIFEST',
    `invalid ${kindName[expected]}: expected ${expected} but found ${found}${mt ? ` (${mt})` : ''}`,
    { hint: 'the media type the document was served or referenced with does not match its content' },
  );
}

function parseAs(bytes: Uint8Array, mediaType: string | undefined, expect: Kind | undefined): ParsedDocument {
  if (mediaType !== undefined && schema1MediaTypes.has(mediaType)) throw schema1Error(mediaType);
  const what = expect ? kindName[expect] : 'manifest';
  const doc = decodeJson(bytes, what);
  rejectSchema1(doc, mediaType);
  if (!isRecord(doc)) {
    // Not an object at all: let the schema say so ("expected object, received array").
    if (expect === 'index') validate(imageIndexSchema, doc, what);
    validate(imageManifestSchema, doc, what);
  }
  const obj = doc as Record<string, unknown>;
  const docType = typeof obj.mediaType === 'string' ? obj.mediaType : undefined;
  const hasIndexFields = obj.manifests !== undefined;
  const hasManifestFields = obj.config !== undefined || obj.layers !== undefined;
  // Only a manifest/index media type says anything; registries serve documents pushed without a
  // type as application/json, application/octet-stream or text/plain, so those are sniffed.
  const given = isDocumentType(mediaType) ? mediaType : undefined;

  // containerd core/images validateMediaType: a document must not be served as the other kind.
  if (given !== undefined) {
    const k = kindOf(given);
    if (k === 'manifest' && (hasIndexFields || isIndexType(docType))) throw mismatch('manifest', given);
    if (k === 'index' && (hasManifestFields || isManifestType(docType))) throw mismatch('index', given);
    // The docker clients dispatch on the Content-Type and then refuse a document whose own
    // mediaType differs (distribution's schema2/ocischema UnmarshalJSON); so does dray.
    if (docType !== undefined && docType !== given) {
      throw new DrayError(
        'DRAY_INVALID_MANIFEST',
        `invalid ${kindName[k]}: media type mismatch: referenced as ${given} but the document says ${docType}`,
      );
    }
  }

  let kind: Kind;
  if (given !== undefined) kind = kindOf(given);
  else if (docType !== undefined) {
    if (!isDocumentType(docType)) {
      throw new DrayError('DRAY_UNSUPPORTED_MEDIA_TYPE', `unsupported manifest media type: ${docType}`, {
        hint: 'dray reads OCI image manifests and indexes and Docker schema 2 manifests and manifest lists',
      });
    }
    kind = kindOf(docType);
  } else if (hasIndexFields && !hasManifestFields) kind = 'index';
  else if (hasManifestFields && !hasIndexFields) kind = 'manifest';
  else if (expect !== undefined) kind = expect;
  else {
    throw new DrayError(
      'DRAY_INVALID_MANIFEST',
      'invalid manifest: cannot tell an image manifest from an index: the document has no mediaType and ' +
        (hasIndexFields ? 'has both manifests and config/layers' : 'neither manifests nor config/layers'),
    );
  }
  // manifest.md / image-index.md: when present, mediaType MUST be the document's own type; the
  // checks above guarantee docType (if any) is of `kind`.
  if (expect !== undefined && kind !== expect) throw mismatch(expect, given ?? docType);

  if (kind === 'manifest') {
    const manifest = validate(imageManifestSchema, doc, kindName.manifest);
    return { kind, mediaType: docType ?? given ?? MediaTypes.ociManifest, manifest };
  }
  const index = validate(imageIndexSchema, doc, kindName.index);
  return { kind, mediaType: docType ?? given ?? MediaTypes.ociIndex, index };
}

/**
 * Parses and validates an image manifest (OCI or Docker schema 2). No I/O.
 * `mediaType` is the descriptor's or the response's Content-Type when known; a manifest or
 * index media type there must agree with the document (see `parseDocument`).
 * @throws DRAY_INVALID_MANIFEST for malformed JSON, a schema violation (the message names the
 *   field, e.g. `config.digest`), or an index where a manifest was expected.
 * @throws DRAY_UNSUPPORTED_MEDIA_TYPE for Docker schema 1 or another manifest format.
 */
export function parseManifest(bytes: Uint8Array, mediaType?: string): ImageManifest {
  const d = parseAs(bytes, mediaType, 'manifest');
  if (d.kind !== 'manifest') throw mismatch('manifest', d.mediaType);
  return d.manifest;
}

/**
 * Parses and validates an image index (OCI) or manifest list (Docker). No I/O.
 * @throws DRAY_INVALID_MANIFEST for malformed JSON, a schema violation, or a manifest where an
 *   index was expected.
 * @throws DRAY_UNSUPPORTED_MEDIA_TYPE for Docker schema 1 or another manifest format.
 */
export function parseIndex(bytes: Uint8Array, mediaType?: string): ImageIndex {
  const d = parseAs(bytes, mediaType, 'index');
  if (d.kind !== 'index') throw mismatch('index', d.mediaType);
  return d.index;
}

/**
 * Parses a document that may be either an image manifest or an index, e.g. a registry's answer
 * to a manifest GET by tag. No I/O. The kind is decided, in order, by `mediaType` (the
 * descriptor's or the Content-Type, when it is a manifest or index type), by the document's
 * own `mediaType`, then by its fields (`manifests` → index, `config`/`layers` → manifest).
 * When both media types are present they must be equal, and a document served as the other
 * kind is refused, as containerd's validateMediaType does. The returned `mediaType` is the
 * document's own, else the given one, else the OCI type of its kind.
 * @throws DRAY_INVALID_MANIFEST for malformed JSON, a schema violation, a mismatch, or a
 *   document that is neither kind.
 * @throws DRAY_UNSUPPORTED_MEDIA_TYPE for Docker schema 1 or another manifest format.
 */
export function parseDocument(bytes: Uint8Array, mediaType?: string): ParsedDocument {
  return parseAs(bytes, mediaType, undefined);
}

/**
 * Parses and validates an image config (OCI config.md, Docker image JSON); unknown fields such
 * as Docker's `container_config` are kept. No I/O.
 * @throws DRAY_INVALID_MANIFEST for malformed JSON or a schema violation (the code covers every
 *   image document dray reads).
 */
export function parseImageConfig(bytes: Uint8Array): ImageConfig {
  return validate(imageConfigSchema, decodeJson(bytes, 'image config'), 'image config');
}

/**
 * Parses and validates a single content descriptor (descriptor.md), e.g. an
 * `application/vnd.oci.descriptor.v1+json` document. No I/O.
 * @throws DRAY_INVALID_MANIFEST for malformed JSON or a schema violation.
 */
export function parseDescriptor(bytes: Uint8Array): Descriptor {
  return validate(descriptorSchema, decodeJson(bytes, 'descriptor'), 'descriptor');
}

/**
 * Parses an OCI layout's `oci-layout` file; only version 1.0.0 exists. No I/O.
 * @throws DRAY_INVALID_MANIFEST for malformed JSON or an unknown `imageLayoutVersion`.
 */
export function parseOciLayoutHeader(bytes: Uint8Array): OciLayoutHeader {
  return validate(ociLayoutHeaderSchema, decodeJson(bytes, 'OCI layout header'), 'OCI layout header');
}
