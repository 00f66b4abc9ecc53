import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { digestOf } from '../digest/index.ts';
import { DrayError } from '../errors.ts';
import { MediaTypes } from './media-types.ts';
import {
  formatPlatform,
  hostPlatform,
  isAttestationManifest,
  normalizePlatform,
  parsePlatform,
  platformMatches,
  selectManifest,
} from './platform.ts';
import type { Descriptor, ImageIndex, Platform } from './types.ts';

const p = (s: string): Platform => {
  const [os = '', architecture = '', variant] = s.split('/');
  return { os, architecture, ...(variant ? { variant } : {}) };
};

function entry(platform: string | Platform, extra: Partial<Descriptor> = {}): Descriptor {
  const pl = typeof platform === 'string' ? p(platform) : platform;
  return {
    mediaType: MediaTypes.ociManifest,
    digest: digestOf(JSON.stringify(pl) + JSON.stringify(extra)),
    size: 100,
    platform: pl,
    ...extra,
  };
}

const attestation = entry('unknown/unknown', {
  annotations: {
    'vnd.docker.reference.type': 'attestation-manifest',
    'vnd.docker.reference.digest': digestOf('amd64'),
  },
});
const multi: ImageIndex = {
  schemaVersion: 2,
  mediaType: MediaTypes.ociIndex,
  manifests: [
    entry('linux/amd64'),
    entry('linux/arm64/v8'),
    entry('linux/arm/v7'),
    entry('linux/arm/v6'),
    attestation,
  ],
};
const pick = (index: ImageIndex, want: string) =>
  formatPlatform(selectManifest(index, parsePlatform(want)).platform!);

describe('parsePlatform', () => {
  const host = hostPlatform();
  for (const [spec, want] of [
    ['linux/arm64/v8', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['linux/arm64', { os: 'linux', architecture: 'arm64' }],
    ['linux/aarch64', { os: 'linux', architecture: 'arm64' }],
    ['Linux/x86_64', { os: 'linux', architecture: 'amd64' }],
    ['linux/x86-64', { os: 'linux', architecture: 'amd64' }],
    ['linux/amd64/v3', { os: 'linux', architecture: 'amd64', variant: 'v3' }],
    ['linux/amd64/v1', { os: 'linux', architecture: 'amd64' }],
    ['linux/i386', { os: 'linux', architecture: '386' }],
    ['linux/arm', { os: 'linux', architecture: 'arm' }],
    ['linux/arm/7', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    // containerd drops the implied v7 of a two-part arm specifier.
    ['linux/armhf', { os: 'linux', architecture: 'arm' }],
    ['linux/armel', { os: 'linux', architecture: 'arm', variant: 'v6' }],
    ['macos/arm64', { os: 'darwin', architecture: 'arm64' }],
    ['windows(10.0.17763)/amd64', { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763' }],
    [
      'linux',
      {
        os: 'linux',
        architecture: host.architecture,
        ...(host.variant && host.variant !== 'v7' ? { variant: host.variant } : {}),
      },
    ],
    ['arm64', { os: host.os, architecture: 'arm64' }],
  ] as const) {
    test(spec, () => assert.deepEqual(parsePlatform(spec), want));
  }

  for (const [spec, why] of [
    ['', /the OS is empty/],
    ['linux/arm64/v8/extra', /too many components: expected os\[\/arch\[\/variant\]\]/],
    ['linux/*', /wildcards are not supported/],
    ['linux//v7', /empty component/],
    ['linux/arm 64', /"arm 64" is not a valid component/],
    ['lin ux/amd64', /"lin ux" is not a valid OS component/],
    ['plan10', /unknown operating system or architecture/],
  ] as const) {
    test(`rejects ${JSON.stringify(spec)}`, () => {
      assert.throws(
        () => parsePlatform(spec),
        (e: unknown) =>
          e instanceof DrayError &&
          e.code === 'DRAY_INVALID_PLATFORM' &&
          e.message.startsWith(`invalid platform ${JSON.stringify(spec)}: `) &&
          why.test(e.message) &&
          /os\[\/arch\[\/variant\]\]/.test(e.hint ?? ''),
      );
    });
  }
});

describe('normalizePlatform and formatPlatform', () => {
  for (const [input, want] of [
    ['linux/aarch64', 'linux/arm64'],
    ['linux/arm64/v8', 'linux/arm64'],
    ['linux/arm64/8', 'linux/arm64'],
    ['linux/arm64/v8.0', 'linux/arm64'],
    ['linux/arm64/9', 'linux/arm64/v9'],
    ['linux/arm64/v8.2', 'linux/arm64/v8.2'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/x86-64', 'linux/amd64'],
    ['linux/amd64/v1', 'linux/amd64'],
    ['linux/amd64/v2', 'linux/amd64/v2'],
    ['linux/i386/v7', 'linux/386'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/armel', 'linux/arm/v6'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/arm/6', 'linux/arm/v6'],
    ['LINUX/AMD64', 'linux/amd64'],
    ['macos/arm64', 'darwin/arm64'],
  ] as const) {
    test(`${input} → ${want}`, () => assert.equal(formatPlatform(normalizePlatform(p(input))), want));
  }

  test('sorts and deduplicates os.features, leaves the input alone', () => {
    const input: Platform = {
      os: 'windows',
      architecture: 'amd64',
      'os.features': ['win32k', 'a', 'win32k'],
    };
    assert.deepEqual(normalizePlatform(input)['os.features'], ['a', 'win32k']);
    assert.deepEqual(input['os.features'], ['win32k', 'a', 'win32k']);
  });

  test('formatPlatform', () => {
    assert.equal(formatPlatform({ os: '', architecture: 'amd64' }), 'unknown');
    assert.equal(formatPlatform({ os: 'linux', architecture: 'arm', variant: 'v7' }), 'linux/arm/v7');
  });
});

test('hostPlatform is normalised and follows process.arch', () => {
  const h = hostPlatform();
  assert.deepEqual(h, normalizePlatform(h));
  const arch: Record<string, string> = {
    x64: 'amd64',
    arm64: 'arm64',
    ia32: '386',
    s390x: 's390x',
    riscv64: 'riscv64',
  };
  if (arch[process.arch]) assert.equal(h.architecture, arch[process.arch]);
  if (process.platform === 'linux') assert.equal(h.os, 'linux');
});

describe('platformMatches', () => {
  for (const [want, have, ok] of [
    ['linux/amd64', 'linux/amd64', true],
    ['linux/amd64', 'linux/x86_64', true],
    ['linux/amd64', 'linux/386', true],
    ['linux/amd64', 'linux/amd64/v2', false],
    ['linux/amd64/v3', 'linux/amd64/v2', true],
    ['linux/amd64/v3', 'linux/amd64', true],
    ['linux/amd64/v2', 'linux/amd64/v3', false],
    ['linux/arm64', 'linux/arm64/v8', true],
    ['linux/arm64/v8', 'linux/arm64', true],
    ['linux/arm64', 'linux/arm/v7', true],
    ['linux/arm64', 'linux/arm64/v8.1', false],
    ['linux/arm64/v8.2', 'linux/arm64/v8.1', true],
    ['linux/arm64/v9', 'linux/arm64/v8.5', true],
    ['linux/arm/v7', 'linux/arm/v6', true],
    ['linux/arm/v7', 'linux/arm/v5', true],
    ['linux/arm/v7', 'linux/arm', true],
    ['linux/arm/v6', 'linux/arm/v7', false],
    ['linux/arm/v7', 'linux/arm64', false],
    ['linux/amd64', 'windows/amd64', false],
    ['linux/s390x', 'linux/amd64', false],
  ] as const) {
    test(`${want} ${ok ? 'runs' : 'does not run'} ${have}`, () =>
      assert.equal(platformMatches(p(want), p(have)), ok));
  }

  test('windows os.version compatibility', () => {
    const want: Platform = { os: 'windows', architecture: 'amd64', 'os.version': '10.0.17763.1' };
    assert.ok(platformMatches(want, { ...want, 'os.version': '10.0.17763.5000' }));
    assert.ok(!platformMatches(want, { ...want, 'os.version': '10.0.20348.1' }));
    const ws2025: Platform = { ...want, 'os.version': '10.0.26100.1' };
    assert.ok(platformMatches(ws2025, { ...want, 'os.version': '10.0.20348.1' }));
  });
});

describe('selectManifest', () => {
  for (const [want, got] of [
    ['linux/amd64', 'linux/amd64'],
    ['linux/x86_64', 'linux/amd64'],
    ['linux/arm64', 'linux/arm64/v8'],
    ['linux/arm64/v8', 'linux/arm64/v8'],
    ['linux/arm/v7', 'linux/arm/v7'],
    ['linux/arm', 'linux/arm/v7'],
    ['linux/armhf', 'linux/arm/v7'],
    ['linux/arm/v6', 'linux/arm/v6'],
    ['linux/arm/v8', 'linux/arm/v7'],
  ] as const) {
    test(`${want} picks ${got}`, () => assert.equal(pick(multi, want), got));
  }

  test('falls back to compatible lower variants, best first', () => {
    const noV7: ImageIndex = {
      ...multi,
      manifests: multi.manifests.filter((d) => d.platform?.variant !== 'v7'),
    };
    assert.equal(pick(noV7, 'linux/arm/v7'), 'linux/arm/v6');
    const armOnly: ImageIndex = { ...multi, manifests: [entry('linux/arm/v6'), entry('linux/arm/v7')] };
    assert.equal(pick(armOnly, 'linux/arm64'), 'linux/arm/v7');
    const levels: ImageIndex = {
      ...multi,
      manifests: [entry('linux/386'), entry('linux/amd64'), entry('linux/amd64/v2')],
    };
    assert.equal(pick(levels, 'linux/amd64/v4'), 'linux/amd64/v2');
    assert.equal(pick(levels, 'linux/amd64'), 'linux/amd64');
    assert.equal(pick({ ...multi, manifests: [entry('linux/386')] }, 'linux/amd64'), 'linux/386');
  });

  test('equal candidates: the first listed wins', () => {
    const a = entry('linux/arm64', { annotations: { n: 'first' } });
    const b = entry('linux/arm64/v8', { annotations: { n: 'second' } });
    assert.equal(selectManifest({ ...multi, manifests: [a, b] }, p('linux/arm64')), a);
  });

  test('skips attestation manifests and entries without a platform', () => {
    const annotated = entry('linux/amd64', {
      annotations: { 'vnd.docker.reference.type': 'attestation-manifest' },
    });
    const real = entry('linux/amd64');
    const { platform: _, ...noPlatform } = entry('linux/amd64', { annotations: { x: 'y' } });
    const index: ImageIndex = { ...multi, manifests: [annotated, noPlatform, real] };
    assert.equal(selectManifest(index, p('linux/amd64')), real);
    assert.ok(
      isAttestationManifest(attestation) && isAttestationManifest(annotated) && !isAttestationManifest(real),
    );
    assert.throws(() => selectManifest(multi, p('unknown/unknown')), { code: 'DRAY_PLATFORM_NOT_FOUND' });
  });

  test('no match: docker wording, with the available platforms in the hint', () => {
    assert.throws(
      () => selectManifest(multi, parsePlatform('linux/s390x')),
      (e: unknown) => {
        assert.ok(e instanceof DrayError);
        assert.equal(e.code, 'DRAY_PLATFORM_NOT_FOUND');
        assert.equal(e.message, 'no matching manifest for linux/s390x in the manifest list entries');
        assert.equal(
          e.hint,
          'the image is available for: linux/amd64, linux/arm64/v8, linux/arm/v7, linux/arm/v6; request one of those platforms',
        );
        return true;
      },
    );
    assert.throws(
      () => selectManifest({ ...multi, manifests: [entry('linux/amd64')] }, parsePlatform('linux/arm64/v8')),
      {
        message: 'no matching manifest for linux/arm64/v8 in the manifest list entries',
      },
    );
    assert.throws(() => selectManifest({ ...multi, manifests: [attestation] }, p('linux/amd64')), {
      hint: 'the image index names no platforms',
    });
  });
});
