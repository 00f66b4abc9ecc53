import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { isDrayError } from '../errors.ts';
import {
  parseDescriptor,
  parseImageConfig,
  parseIndex,
  parseManifest,
  parseOciLayoutHeader,
} from './schema.ts';
import { type OciSchemaKind, ociSpecDataDir, validateWithOciSchema } from './testing.ts';

// The OCI image-spec's own test vectors (../shared/conformance/oci-image-spec, see its README):
// upstream's verdict must be reproduced twice, by the independent ajv emulation in testing.ts
// (so other tests can trust it for documents dray writes) and by dray's zod parsers.

interface Case {
  name: string;
  mediaType: string;
  schema: string;
  valid: boolean;
  doc: unknown;
  docText: string;
  preprocess?: 'convertFormats';
  expectedDigestOfDocText?: string;
}

const kindOf: Record<string, OciSchemaKind> = {
  'content-descriptor.json': 'descriptor',
  'image-manifest-schema.json': 'manifest',
  'image-index-schema.json': 'index',
  'config-schema.json': 'config',
  'image-layout-schema.json': 'layout',
};

/**
 * Where dray's parsers deliberately disagree with upstream, and why (see schema.ts). The test
 * below fails if one of these starts agreeing, so the list cannot go stale.
 */
const deviations = new Map<string, string>([
  ...[
    'TestDescriptor#21',
    'TestDescriptor#22',
    'TestDescriptor#23',
    'TestDescriptor#24',
    'TestDescriptor#25',
  ].map((n): [string, string] => [
    n,
    'digest algorithm dray cannot verify (upstream only checks the grammar)',
  ]),
  ['TestDescriptor#27', 'digest algorithm sha256+b64u: dray cannot verify it'],
  ['TestDescriptor#28', 'digest algorithm sha256+b64u.unknownlength: dray cannot verify it'],
  ['TestManifest#6', 'digest algorithms sha256+b64, multihash+base58…: dray cannot verify them'],
  ['TestManifest#5', 'empty layers: BuildKit and ggcr write them for images with no filesystem changes'],
]);

// backwards_compatibility_test.go convertFormats: Docker media types → OCI before validating.
function convertFormats(text: string): string {
  return text
    .replaceAll(
      'application/vnd.docker.distribution.manifest.list.v2+json',
      'application/vnd.oci.image.index.v1+json',
    )
    .replaceAll(
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.oci.image.manifest.v1+json',
    )
    .replaceAll(
      'application/vnd.docker.image.rootfs.diff.tar.gzip',
      'application/vnd.oci.image.layer.v1.tar+gzip',
    )
    .replaceAll('application/vnd.docker.container.image.v1+json', 'application/vnd.oci.image.config.v1+json');
}

function parseWithDray(kind: OciSchemaKind, bytes: Uint8Array, mediaType?: string): unknown {
  switch (kind) {
    case 'descriptor':
      return parseDescriptor(bytes);
    case 'manifest':
      return parseManifest(bytes, mediaType);
    case 'index':
      return parseIndex(bytes, mediaType);
    case 'config':
      return parseImageConfig(bytes);
    case 'layout':
      return parseOciLayoutHeader(bytes);
  }
}

function draVerdict(
  kind: OciSchemaKind,
  text: string,
  mediaType?: string,
): { ok: boolean; value?: unknown; error?: unknown } {
  try {
    return { ok: true, value: parseWithDray(kind, new TextEncoder().encode(text), mediaType) };
  } catch (error) {
    return { ok: false, error };
  }
}

const schemaDir = `${ociSpecDataDir}schema/`;
const casesFile = `${ociSpecDataDir}cases.json`;

test('conformance data is present', () => {
  assert.ok(existsSync(casesFile), `missing ${casesFile}`);
  const schemas = readdirSync(schemaDir).filter((f) => f.endsWith('.json'));
  assert.equal(schemas.length, 7, `expected the 7 upstream schemas in ${schemaDir}`);
});

const data = existsSync(casesFile)
  ? (JSON.parse(readFileSync(casesFile, 'utf8')) as { cases: Case[]; specExamples: Case[] })
  : { cases: [], specExamples: [] };
const all = [...data.cases, ...data.specExamples];

test('cases.json holds the 71 schema-test cases and 13 spec examples', () => {
  assert.equal(data.cases.length, 71);
  assert.equal(data.specExamples.length, 13);
  for (const name of deviations.keys())
    assert.ok(
      all.some((c) => c.name === name),
      `unknown deviation ${name}`,
    );
});

describe('upstream validator emulation (testing.ts) reproduces every verdict', () => {
  for (const c of all) {
    test(c.name, () => {
      const kind = kindOf[c.schema];
      assert.ok(kind, `no kind for ${c.schema}`);
      const text = c.preprocess === 'convertFormats' ? convertFormats(c.docText) : c.docText;
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch {
        assert.equal(c.valid, false, 'upstream accepts text that is not JSON?');
        return;
      }
      const errors = validateWithOciSchema(kind, doc);
      assert.equal(errors.length === 0, c.valid, errors.join('; '));
    });
  }
});

describe("dray's parsers reproduce every verdict (except the listed deviations)", () => {
  for (const c of all) {
    const kind = kindOf[c.schema] as OciSchemaKind;
    const deviation = deviations.get(c.name);
    test(deviation ? `${c.name} (deviation: ${deviation})` : c.name, () => {
      const text = c.preprocess === 'convertFormats' ? convertFormats(c.docText) : c.docText;
      const r = draVerdict(kind, text, c.mediaType);
      const expected = deviation ? !c.valid : c.valid;
      assert.equal(r.ok, expected, r.error instanceof Error ? r.error.message : 'accepted');
      if (!r.ok) assert.ok(isDrayError(r.error, 'DRAY_INVALID_MANIFEST'), String(r.error));
      // What dray parsed is itself a valid document: nothing the parsers return breaks the spec.
      if (r.ok && c.valid) assert.deepEqual(validateWithOciSchema(kind, r.value), []);
    });
  }
});

describe('backwards compatibility documents (Docker media types)', () => {
  for (const c of all.filter((x) => x.preprocess === 'convertFormats')) {
    test(c.name, () => {
      const digest = `sha256:${createHash('sha256').update(c.docText).digest('hex')}`;
      assert.equal(digest, c.expectedDigestOfDocText);
      // dray reads the Docker originals natively, without upstream's conversion.
      const kind = kindOf[c.schema] as OciSchemaKind;
      const own = (c.doc as { mediaType?: string }).mediaType;
      const r = draVerdict(kind, c.docText, own);
      assert.equal(r.ok, true, r.error instanceof Error ? r.error.message : '');
      assert.equal(draVerdict(kind, c.docText).ok, true);
    });
  }
});
