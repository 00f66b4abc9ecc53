import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { MediaTypes } from './media-types.ts';
import {
  parseDescriptor,
  parseDocument,
  parseImageConfig,
  parseIndex,
  parseManifest,
  parseOciLayoutHeader,
} from './schema.ts';
import { validateWithOciSchema } from './testing.ts';

const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
const dg = (s: string) => digestOf(s);
const desc = (mediaType: string, s = 'x') => ({ mediaType, digest: dg(s), size: s.length });

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociManifest,
  config: desc(MediaTypes.ociConfig, '{}'),
  layers: [desc(MediaTypes.ociLayerGzip, 'layer')],
};
const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaTypes.dockerManifest,
  config: desc(MediaTypes.dockerConfig, '{}'),
  layers: [desc(MediaTypes.dockerLayerGzip, 'layer')],
};
const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [{ ...desc(MediaTypes.ociManifest, 'm'), platform: { os: 'linux', architecture: 'amd64' } }],
};

function throwsCode(fn: () => unknown, code: string, message?: RegExp): DrayError {
  let caught: unknown;
  assert.throws(fn, (e: unknown) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof DrayError, String(caught));
  assert.equal(caught.code, code, caught.message);
  if (message) assert.match(caught.message, message);
  return caught;
}

describe('parseManifest', () => {
  test('reads OCI and Docker schema 2 manifests', () => {
    assert.deepEqual(parseManifest(enc(ociManifest)), ociManifest);
    assert.deepEqual(parseManifest(enc(dockerManifest), MediaTypes.dockerManifest), dockerManifest);
    assert.deepEqual(validateWithOciSchema('manifest', parseManifest(enc(ociManifest))), []);
  });

  test('accepts an empty layers list (FROM scratch images with only metadata)', () => {
    assert.deepEqual(parseManifest(enc({ ...ociManifest, layers: [] })).layers, []);
  });

  test('names the failing field in the message', () => {
    throwsCode(
      () => parseManifest(enc({ ...ociManifest, config: { ...ociManifest.config, digest: 'sha256:abc' } })),
      'DRAY_INVALID_MANIFEST',
      /^invalid image manifest: config\.digest: /,
    );
    throwsCode(
      () =>
        parseManifest(enc({ ...ociManifest, layers: [ociManifest.layers[0], { ...desc('a/b'), size: -1 }] })),
      'DRAY_INVALID_MANIFEST',
      /^invalid image manifest: layers\[1\]\.size: /,
    );
    throwsCode(
      () => parseManifest(enc({ ...ociManifest, annotations: { 'org.example': 1 } })),
      'DRAY_INVALID_MANIFEST',
      /annotations\["org\.example"\]: expected string/,
    );
    throwsCode(
      () => parseManifest(enc({ schemaVersion: 2, layers: [] })),
      'DRAY_INVALID_MANIFEST',
      /config: required field is missing/,
    );
    throwsCode(
      () => parseManifest(enc({ ...ociManifest, schemaVersion: 3 })),
      'DRAY_INVALID_MANIFEST',
      /schemaVersion/,
    );
  });

  test('refuses sizes a number cannot hold exactly and unsupported digest algorithms', () => {
    throwsCode(
      () => parseManifest(enc({ ...ociManifest, config: { ...ociManifest.config, size: 2 ** 53 + 2 } })),
      'DRAY_INVALID_MANIFEST',
      /config\.size/,
    );
    throwsCode(
      () =>
        parseManifest(
          enc({ ...ociManifest, config: { ...ociManifest.config, digest: `sha384:${'a'.repeat(96)}` } }),
        ),
      'DRAY_INVALID_MANIFEST',
      /config\.digest: unsupported digest algorithm: sha384/,
    );
  });

  test('malformed JSON, bad UTF-8 and a BOM are invalid manifests', () => {
    throwsCode(() => parseManifest(enc('{"schemaVersion": 2,')), 'DRAY_INVALID_MANIFEST', /malformed JSON/);
    throwsCode(() => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d])), 'DRAY_INVALID_MANIFEST', /UTF-8/);
    throwsCode(() => parseManifest(enc(`\ufeff${JSON.stringify(ociManifest)}`)), 'DRAY_INVALID_MANIFEST');
    throwsCode(() => parseManifest(enc('[]')), 'DRAY_INVALID_MANIFEST', /expected object/);
  });

  test('an index is not a manifest', () => {
    throwsCode(
      () => parseManifest(enc(ociIndex)),
      'DRAY_INVALID_MANIFEST',
      /expected manifest but found index/,
    );
    throwsCode(
      () => parseManifest(enc(ociIndex), MediaTypes.ociManifest),
      'DRAY_INVALID_MANIFEST',
      /expected manifest but found index/,
    );
  });
});

describe('Docker schema 1', () => {
  const schema1 = {
    schemaVersion: 1,
    name: 'library/busybox',
    tag: 'latest',
    architecture: 'amd64',
    fsLayers: [{ blobSum: dg('a') }],
    history: [{ v1Compatibility: '{}' }],
  };
  for (const [name, run] of [
    ['schemaVersion 1 document', () => parseDocument(enc(schema1))],
    ['served as application/json', () => parseDocument(enc(schema1), 'application/json')],
    ['signed media type', () => parseManifest(enc(schema1), MediaTypes.dockerSchema1SignedManifest)],
    ['v1 media type, any body', () => parseDocument(enc('{}'), MediaTypes.dockerSchema1Manifest)],
    ['fsLayers without a version', () => parseDocument(enc({ fsLayers: [] }))],
  ] as const) {
    test(`is refused: ${name}`, () => {
      const e = throwsCode(
        run,
        'DRAY_UNSUPPORTED_MEDIA_TYPE',
        /^unsupported manifest format: Docker Image Manifest Version 2, Schema 1 \(/,
      );
      assert.match(e.hint ?? '', /schema 1 images are deprecated and not supported; re-push/);
    });
  }
});

describe('parseDocument', () => {
  test('decides by the given media type, the document, then the fields', () => {
    assert.equal(parseDocument(enc(ociManifest)).kind, 'manifest');
    assert.equal(parseDocument(enc(ociIndex)).kind, 'index');
    const { mediaType: _m, ...bareManifest } = ociManifest;
    const { mediaType: _i, ...bareIndex } = ociIndex;
    const m = parseDocument(enc(bareManifest));
    assert.equal(m.kind, 'manifest');
    assert.equal(m.mediaType, MediaTypes.ociManifest);
    const i = parseDocument(enc(bareIndex));
    assert.equal(i.kind, 'index');
    assert.equal(i.mediaType, MediaTypes.ociIndex);
    const d = parseDocument(enc(bareManifest), MediaTypes.dockerManifest);
    assert.equal(d.mediaType, MediaTypes.dockerManifest);
    const list = parseDocument(enc({ ...ociIndex, mediaType: MediaTypes.dockerManifestList }));
    assert.deepEqual([list.kind, list.mediaType], ['index', MediaTypes.dockerManifestList]);
  });

  test('sniffs documents served with a generic Content-Type', () => {
    for (const ct of ['application/json', 'application/octet-stream', 'text/plain']) {
      assert.equal(parseDocument(enc(dockerManifest), ct).kind, 'manifest');
      assert.equal(parseDocument(enc(ociIndex), ct).kind, 'index');
    }
  });

  test('a manifest served as an index, or the reverse, is refused (containerd validateMediaType)', () => {
    throwsCode(
      () => parseDocument(enc(ociManifest), MediaTypes.ociIndex),
      'DRAY_INVALID_MANIFEST',
      /expected index but found manifest \(application\/vnd\.oci\.image\.index\.v1\+json\)/,
    );
    const { mediaType: _m, ...bareManifest } = ociManifest;
    throwsCode(
      () => parseDocument(enc(bareManifest), MediaTypes.dockerManifestList),
      'DRAY_INVALID_MANIFEST',
    );
    const { mediaType: _i, ...bareIndex } = ociIndex;
    throwsCode(
      () => parseDocument(enc(bareIndex), MediaTypes.ociManifest),
      'DRAY_INVALID_MANIFEST',
      /expected manifest but found index/,
    );
  });

  test('the given and the document media types must agree', () => {
    throwsCode(
      () => parseDocument(enc(ociManifest), MediaTypes.dockerManifest),
      'DRAY_INVALID_MANIFEST',
      /media type mismatch: referenced as application\/vnd\.docker\.distribution\.manifest\.v2\+json but the document says application\/vnd\.oci\.image\.manifest\.v1\+json/,
    );
  });

  test('other document types and undecidable documents', () => {
    throwsCode(
      () =>
        parseDocument(enc({ ...ociManifest, mediaType: 'application/vnd.oci.artifact.manifest.v1+json' })),
      'DRAY_UNSUPPORTED_MEDIA_TYPE',
      /unsupported manifest media type: application\/vnd\.oci\.artifact\.manifest\.v1\+json/,
    );
    throwsCode(() => parseDocument(enc({ schemaVersion: 2 })), 'DRAY_INVALID_MANIFEST', /cannot tell/);
    throwsCode(
      () => parseDocument(enc({ schemaVersion: 2, manifests: [], layers: [] })),
      'DRAY_INVALID_MANIFEST',
      /cannot tell/,
    );
  });

  test('schema errors in an index name the entry', () => {
    throwsCode(
      () =>
        parseIndex(
          enc({ ...ociIndex, manifests: [{ ...ociIndex.manifests[0], platform: { os: 'linux' } }] }),
        ),
      'DRAY_INVALID_MANIFEST',
      /^invalid image index: manifests\[0\]\.platform\.architecture: required field is missing$/,
    );
  });
});

describe('parseImageConfig', () => {
  const base = {
    architecture: 'amd64',
    os: 'linux',
    rootfs: { type: 'layers', diff_ids: [dg('layer')] },
  };

  test('keeps unknown and Docker fields', () => {
    const doc = {
      ...base,
      created: '2024-01-02T03:04:05.123456789Z',
      container_config: { Hostname: 'abc' },
      docker_version: '24.0.0',
      config: { Env: ['A=b'], Cmd: null, Entrypoint: null, Hostname: 'abc', Healthcheck: { Test: ['NONE'] } },
      history: [{ created_by: '/bin/sh', empty_layer: true, extra: 1 }],
    };
    const c = parseImageConfig(enc(doc));
    assert.equal(c.docker_version, '24.0.0');
    assert.deepEqual(c.container_config, { Hostname: 'abc' });
    assert.equal((c.config as Record<string, unknown>).Hostname, 'abc');
    assert.equal(c.config?.Cmd, null);
    assert.deepEqual(validateWithOciSchema('config', c), []);
  });

  test('reads the nulls Docker writes as absent', () => {
    const c = parseImageConfig(
      enc({ ...base, config: { Env: null, Volumes: null, Labels: null, ExposedPorts: null } }),
    );
    assert.deepEqual(c.config, {});
  });

  test('refuses what the spec refuses', () => {
    throwsCode(
      () => parseImageConfig(enc({ ...base, os: 1 })),
      'DRAY_INVALID_MANIFEST',
      /^invalid image config: os: /,
    );
    throwsCode(
      () => parseImageConfig(enc({ ...base, config: { Env: ['NOEQUALS'] } })),
      'DRAY_INVALID_MANIFEST',
      /config\.Env\[0\]: must be VARNAME=VALUE/,
    );
    throwsCode(
      () => parseImageConfig(enc({ ...base, created: '2024-13-01T00:00:00Z' })),
      'DRAY_INVALID_MANIFEST',
      /created: must be an RFC 3339 date-time/,
    );
    throwsCode(
      () => parseImageConfig(enc({ ...base, rootfs: { type: 'layers', diff_ids: ['nope'] } })),
      'DRAY_INVALID_MANIFEST',
      /rootfs\.diff_ids\[0\]/,
    );
    throwsCode(
      () => parseImageConfig(enc({ ...base, rootfs: { type: 'other', diff_ids: [] } })),
      'DRAY_INVALID_MANIFEST',
      /rootfs\.type/,
    );
    throwsCode(
      () => parseImageConfig(enc({ ...base, config: { Volumes: ['/data'] } })),
      'DRAY_INVALID_MANIFEST',
    );
  });
});

describe('parseDescriptor and parseOciLayoutHeader', () => {
  test('descriptor', () => {
    const d = { ...desc(MediaTypes.ociEmpty, '{}'), data: 'e30=', urls: ['https://example.com/x'] };
    assert.deepEqual(parseDescriptor(enc(d)), d);
    throwsCode(
      () => parseDescriptor(enc({ ...d, urls: ['relative/path'] })),
      'DRAY_INVALID_MANIFEST',
      /urls\[0\]/,
    );
    throwsCode(() => parseDescriptor(enc({ ...d, data: 'e30' })), 'DRAY_INVALID_MANIFEST', /data: /);
  });

  test('layout header', () => {
    assert.deepEqual(parseOciLayoutHeader(enc({ imageLayoutVersion: '1.0.0' })), {
      imageLayoutVersion: '1.0.0',
    });
    throwsCode(() => parseOciLayoutHeader(enc({ imageLayoutVersion: '2.0.0' })), 'DRAY_INVALID_MANIFEST');
  });
});
