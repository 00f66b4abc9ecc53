import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import ajvDraft04 from 'ajv-draft-04';

/**
 * Test helper: validates a document the way upstream's OCI image-spec validator does
 * (opencontainers/image-spec `schema/validator.go`): the Go decoding checks first, then the
 * JSON schemas in `../shared/conformance/oci-image-spec/schema/` with format assertions on.
 * It is deliberately independent of dray's zod parsers (own format checks, the upstream schema
 * files), so tests can hold every document dray writes to the spec. Tests only: it reads the
 * conformance data from disk and imports ajv, a dev dependency.
 */

/** Where the upstream schemas and `cases.json` live (missing data makes tests fail, not skip). */
export const ociSpecDataDir = fileURLToPath(
  new URL('../../../shared/conformance/oci-image-spec/', import.meta.url),
);

/** The documents `validateWithOciSchema` knows. */
export type OciSchemaKind = 'manifest' | 'index' | 'config' | 'layout' | 'descriptor';

const rootSchema: Record<OciSchemaKind, string> = {
  manifest: 'https://opencontainers.org/schema/image/manifest',
  index: 'https://opencontainers.org/schema/image/index',
  config: 'https://opencontainers.org/schema/image/config',
  layout: 'https://opencontainers.org/schema/image/layout',
  descriptor: 'https://opencontainers.org/schema/descriptor',
};

// schema/schema.go specURLs: every URL a `$ref` may use for each file (the README table).
const aliases: Record<string, string[]> = {
  'config-schema.json': ['https://opencontainers.org/schema/image/config'],
  'content-descriptor.json': [
    'https://opencontainers.org/schema/descriptor',
    'https://opencontainers.org/schema/image/content-descriptor.json',
  ],
  'defs-descriptor.json': [
    'https://opencontainers.org/schema/image/descriptor/mediaType',
    'https://opencontainers.org/schema/defs-descriptor.json',
    'https://opencontainers.org/schema/image/defs-descriptor.json',
  ],
  'defs.json': [
    'https://opencontainers.org/schema/defs.json',
    'https://opencontainers.org/schema/image/defs.json',
    'https://opencontainers.org/schema/image/descriptor/defs.json',
  ],
  'image-index-schema.json': ['https://opencontainers.org/schema/image/index'],
  'image-layout-schema.json': ['https://opencontainers.org/schema/image/layout'],
  'image-manifest-schema.json': ['https://opencontainers.org/schema/image/manifest'],
};

// RFC 3986 absolute-URI: scheme ":" hier-part, no whitespace or characters outside the grammar.
const uriRe = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?#[\]]|%[0-9A-Fa-f]{2})*$/;
// RFC 3339 section 5.6 date-time.
const dateTimeRe =
  /^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$/;

type Validate = ((doc: unknown) => boolean) & {
  errors?: Array<{ instancePath: string; message?: string }> | null;
};
let compiled: Map<OciSchemaKind, Validate> | undefined;

function load(): Map<OciSchemaKind, Validate> {
  if (compiled) return compiled;
  // ajv-draft-04 is CommonJS: the ESM default import is module.exports, whose `.default` is the class.
  const Ajv = ajvDraft04.default;
  // strict: false because the upstream schemas use the non-standard `media` keyword.
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  ajv.addFormat('uri', uriRe);
  ajv.addFormat('date-time', dateTimeRe);
  for (const [file, urls] of Object.entries(aliases)) {
    const schema = dropIdsBesideRef(
      JSON.parse(readFileSync(`${ociSpecDataDir}schema/${file}`, 'utf8')),
    ) as Record<string, unknown>;
    for (const url of [...urls, file]) {
      // One copy per URL: ajv keys a schema by its `id`, so each alias gets its own.
      const { id: _id, ...rest } = schema;
      if (url === 'https://opencontainers.org/schema/image/descriptor/mediaType') {
        // That URL is also the `id` of the mediaType definition inside this file, which is
        // what a `$ref` to it means; registering the whole file there too would be ambiguous.
        continue;
      }
      ajv.addSchema({ ...rest, id: url });
    }
  }
  const out = new Map<OciSchemaKind, Validate>();
  for (const [kind, url] of Object.entries(rootSchema) as Array<[OciSchemaKind, string]>) {
    const v = ajv.getSchema(url);
    if (!v) throw new Error(`OCI schema ${url} did not load`);
    out.set(kind, v as Validate);
  }
  compiled = out;
  return out;
}

// Draft 4: "other properties in a JSON Reference object SHALL be ignored", so an `id` beside a
// `$ref` does not move the base URI (upstream's Go validator follows this); ajv would apply it
// and then fail to resolve the ref, so such ids are dropped.
function dropIdsBesideRef(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropIdsBesideRef);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'id' && '$ref' in v) continue;
    out[k] = dropIdsBesideRef(x);
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const stdBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const registered: Record<string, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha384: /^[a-f0-9]{96}$/,
  sha512: /^[a-f0-9]{128}$/,
};

// Go's json.Unmarshal into v1.Descriptor: `data` is []byte (std base64) and `platform` a struct.
function goDescriptor(d: unknown, path: string, errors: string[]): void {
  if (!isObject(d)) return;
  if (d.data !== undefined && (typeof d.data !== 'string' || !stdBase64.test(d.data))) {
    errors.push(`${path}/data: not standard base64`);
  }
  const p = d.platform;
  if (p === undefined || p === null) return;
  if (!isObject(p)) {
    errors.push(`${path}/platform: not an object`);
    return;
  }
  for (const k of ['architecture', 'os', 'os.version', 'variant']) {
    if (p[k] !== undefined && p[k] !== null && typeof p[k] !== 'string')
      errors.push(`${path}/platform/${k}: not a string`);
  }
  for (const k of ['os.features', 'features']) {
    const v = p[k];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((x) => typeof x === 'string'))) {
      errors.push(`${path}/platform/${k}: not a list of strings`);
    }
  }
}

// The checks schema/validator.go runs before the schema.
function goChecks(kind: OciSchemaKind, doc: unknown): string[] {
  const errors: string[] = [];
  if (!isObject(doc)) return errors; // the schema reports the type
  if (kind === 'descriptor') {
    goDescriptor(doc, '', errors);
    // digest.Validate(): registered algorithms need their exact encoding; others pass here.
    if (typeof doc.digest === 'string') {
      const i = doc.digest.indexOf(':');
      const re = registered[doc.digest.slice(0, i)];
      if (i > 0 && re && !re.test(doc.digest.slice(i + 1))) errors.push('/digest: invalid encoded digest');
    }
  } else if (kind === 'manifest' || kind === 'index') {
    if (doc.schemaVersion !== undefined && !Number.isInteger(doc.schemaVersion))
      errors.push('/schemaVersion: not an int');
    for (const k of ['config', 'subject']) goDescriptor(doc[k], `/${k}`, errors);
    for (const k of ['layers', 'manifests']) {
      const list = doc[k];
      if (!Array.isArray(list)) continue;
      for (const [i, d] of list.entries()) goDescriptor(d, `/${k}/${i}`, errors);
    }
  } else if (kind === 'config') {
    const env = isObject(doc.config) ? doc.config.Env : undefined;
    if (Array.isArray(env)) {
      env.forEach((e, i) => {
        if (typeof e === 'string' && !/^[^=]+=.*$/.test(e))
          errors.push(`/config/Env/${i}: not VARNAME=VALUE`);
      });
    }
  }
  return errors;
}

/**
 * Validates `doc` (parsed JSON) against the upstream OCI image-spec schema for `kind`, after
 * upstream's Go decoding checks. Returns the problems found, `[]` when valid. Reads the schema
 * files once (sync I/O); tests only.
 */
export function validateWithOciSchema(kind: OciSchemaKind, doc: unknown): string[] {
  const pre = goChecks(kind, doc);
  if (pre.length > 0) return pre;
  const validate = load().get(kind);
  if (!validate) throw new Error(`no OCI schema for ${kind}`);
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'}: ${e.message ?? 'invalid'}`);
}
