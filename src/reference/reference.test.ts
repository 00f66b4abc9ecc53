import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseDigest } from '../digest/index.ts';
import { DrayError, isDrayError } from '../errors.ts';
import {
  defaultDomain,
  defaultTag,
  familiarMatch,
  familiarName,
  familiarString,
  isValidTag,
  legacyDefaultDomain,
  maxPathLength,
  normalizeReference,
  officialRepoPrefix,
  parseAnyReference,
  parseCanonicalReference,
  parseDockerRef,
  parseRawName,
  parseRawReference,
  parseReference,
  referenceString,
  repositoryName,
  withDigest,
  withTag,
} from './index.ts';

const sha = `sha256:${'f'.repeat(64)}`;

function invalid(fn: () => unknown, message: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof DrayError);
    assert.ok(isDrayError(e, 'DRAY_INVALID_REFERENCE'));
    assert.equal(e.name, 'DrayError');
    assert.equal(e.message, message);
    return true;
  });
}

describe('constants', () => {
  it('are docker’s', () => {
    assert.equal(defaultDomain, 'docker.io');
    assert.equal(legacyDefaultDomain, 'index.docker.io');
    assert.equal(officialRepoPrefix, 'library/');
    assert.equal(defaultTag, 'latest');
    assert.equal(maxPathLength, 255);
  });
});

describe('parseReference', () => {
  it('qualifies official images with docker.io and library/', () => {
    assert.deepEqual(parseReference('ubuntu'), { domain: 'docker.io', path: 'library/ubuntu' });
    assert.deepEqual(parseReference('ubuntu:22.04'), {
      domain: 'docker.io',
      path: 'library/ubuntu',
      tag: '22.04',
    });
  });

  it('qualifies user repositories with docker.io only', () => {
    assert.deepEqual(parseReference('user/app'), { domain: 'docker.io', path: 'user/app' });
    assert.deepEqual(parseReference('library/a/b'), { domain: 'docker.io', path: 'library/a/b' });
  });

  it('rewrites index.docker.io to docker.io', () => {
    assert.deepEqual(parseReference('index.docker.io/busybox'), {
      domain: 'docker.io',
      path: 'library/busybox',
    });
    assert.deepEqual(parseReference('index.docker.io/u/x'), { domain: 'docker.io', path: 'u/x' });
  });

  it('keeps other registries, ports, localhost and IPv6 hosts', () => {
    assert.deepEqual(parseReference('localhost:5000/x:1'), { domain: 'localhost:5000', path: 'x', tag: '1' });
    assert.deepEqual(parseReference('localhost/x'), { domain: 'localhost', path: 'x' });
    assert.deepEqual(parseReference('[::1]:5000/a/b'), { domain: '[::1]:5000', path: 'a/b' });
    assert.deepEqual(parseReference('registry.example.com/app:1.2'), {
      domain: 'registry.example.com',
      path: 'app',
      tag: '1.2',
    });
    assert.deepEqual(parseReference('gcr.io/library/x'), { domain: 'gcr.io', path: 'library/x' });
  });

  it('treats a bare host-like name as an image on Docker Hub', () => {
    // Upstream FIXME: "localhost" and "example.com" alone are names, not domains.
    assert.deepEqual(parseReference('localhost'), { domain: 'docker.io', path: 'library/localhost' });
    assert.deepEqual(parseReference('example.com:5000'), {
      domain: 'docker.io',
      path: 'library/example.com',
      tag: '5000',
    });
  });

  it('reads name, tag and digest together and adds no default tag', () => {
    const r = parseReference(`busybox:1@${sha}`);
    assert.deepEqual(r, { domain: 'docker.io', path: 'library/busybox', tag: '1', digest: sha });
    assert.ok(!('tag' in parseReference('busybox')));
    assert.ok(!('digest' in parseReference('busybox')));
  });

  it('returns frozen references', () => {
    assert.ok(Object.isFrozen(parseReference('busybox')));
  });

  it('rejects upper case in the repository with docker’s message', () => {
    invalid(
      () => parseReference('Ubuntu'),
      'invalid reference format: repository name (library/Ubuntu) must be lowercase',
    );
    invalid(
      () => parseReference('docker/Docker:tag'),
      'invalid reference format: repository name (docker/Docker) must be lowercase',
    );
  });

  it('takes an upper-case first component as a domain', () => {
    assert.deepEqual(parseReference('Foo/bar'), { domain: 'Foo', path: 'bar' });
  });

  it('rejects a 64-hex-digit name as an image ID', () => {
    const id = 'a'.repeat(64);
    invalid(
      () => parseReference(id),
      `invalid repository name (${id}), cannot specify 64-byte hexadecimal strings`,
    );
    assert.deepEqual(parseReference(`docker.io/${id}`), { domain: 'docker.io', path: `library/${id}` });
  });

  it('rejects malformed references', () => {
    invalid(() => parseReference(''), 'invalid reference format');
    invalid(() => parseReference('https://github.com/docker/docker'), 'invalid reference format');
    invalid(() => parseReference('-docker'), 'invalid reference format');
    invalid(() => parseReference('docker///docker'), 'invalid reference format');
    invalid(() => parseReference('[fc00::1]:5000'), 'invalid reference format');
    invalid(() => parseReference('x:-tag'), 'invalid reference format');
    invalid(() => parseReference(`x:${'t'.repeat(129)}`), 'invalid reference format');
  });

  it('limits the path to 255 characters', () => {
    const ok = `x/${'a'.repeat(253)}`;
    assert.equal(parseReference(ok).path.length, 255);
    invalid(
      () => parseReference(`x/${'a'.repeat(254)}`),
      'repository name must not be more than 255 characters',
    );
    // The domain does not count, as upstream.
    assert.equal(parseReference(`example.com/${'a'.repeat(255)}`).path.length, 255);
  });

  it('reports digest errors with go-digest’s wording', () => {
    invalid(() => parseReference(`x@sha256:${'f'.repeat(63)}`), 'invalid checksum digest length');
    invalid(() => parseReference(`x@md5:${'f'.repeat(32)}`), 'unsupported digest algorithm');
    invalid(() => parseReference(`x@sha256:${'F'.repeat(64)}`), 'invalid checksum digest format');
    invalid(() => parseReference(`x@constructor:${'f'.repeat(64)}`), 'unsupported digest algorithm');
  });

  it('accepts sha512 digests', () => {
    const d = `sha512:${'e'.repeat(128)}`;
    assert.equal(parseReference(`x@${d}`).digest, d);
  });
});

describe('parseRawReference', () => {
  it('does not normalise', () => {
    assert.deepEqual(parseRawReference('ubuntu'), { domain: '', path: 'ubuntu' });
    assert.deepEqual(parseRawReference('a/b'), { domain: 'a', path: 'b' });
    assert.deepEqual(parseRawReference('test_com/b'), { domain: '', path: 'test_com/b' });
  });

  it('reads a colon after a one-component name as a tag', () => {
    assert.deepEqual(parseRawReference('test.com:5000'), { domain: '', path: 'test.com', tag: '5000' });
  });

  it('uses distribution’s sentinel messages', () => {
    invalid(() => parseRawReference(''), 'repository name must have at least one component');
    invalid(() => parseRawReference('Uppercase:tag'), 'repository name must be lowercase');
    invalid(() => parseRawReference(':tag'), 'invalid reference format');
  });

  it('matches Go’s lower-casing when classifying upper case', () => {
    // U+0130 lower-cases to "i" in Go; JavaScript gives "i̇", which would be a format error.
    invalid(() => parseRawReference('\u0130mage'), 'repository name must be lowercase');
    invalid(() => parseRawReference('\u00e9'), 'invalid reference format');
  });

  it('round-trips through referenceString', () => {
    for (const s of ['a', 'a/b/c:t', `[::1]:5000/r:t@${sha}`, `r@${sha}`, 'Host.Example:1/x']) {
      assert.equal(referenceString(parseRawReference(s)), s);
    }
  });
});

describe('parseRawName', () => {
  it('parses a bare name without normalising', () => {
    assert.deepEqual(parseRawName('test:8080/foo'), { domain: 'test:8080', path: 'foo' });
    assert.deepEqual(parseRawName('foo'), { domain: '', path: 'foo' });
  });

  it('rejects tags, digests and empty names', () => {
    invalid(() => parseRawName('foo:tag'), 'invalid reference format');
    invalid(() => parseRawName(`foo@${sha}`), 'invalid reference format');
    invalid(() => parseRawName(''), 'invalid reference format');
    invalid(
      () => parseRawName(`x/${'a'.repeat(256)}`),
      'repository name must not be more than 255 characters',
    );
  });
});

describe('parseCanonicalReference', () => {
  it('accepts only the fully qualified form', () => {
    assert.deepEqual(parseCanonicalReference('docker.io/library/x:1'), {
      domain: 'docker.io',
      path: 'library/x',
      tag: '1',
    });
    invalid(() => parseCanonicalReference('x'), 'repository name must be canonical');
    invalid(() => parseCanonicalReference('docker.io/x'), 'repository name must be canonical');
  });
});

describe('parseAnyReference', () => {
  it('reads image IDs and digests as digests', () => {
    assert.equal(parseAnyReference('f'.repeat(64)), sha);
    assert.equal(parseAnyReference(sha), sha);
  });

  it('reads anything else as a normalised reference', () => {
    assert.deepEqual(parseAnyReference('f'.repeat(63)), {
      domain: 'docker.io',
      path: `library/${'f'.repeat(63)}`,
    });
    invalid(
      () => parseAnyReference('F'.repeat(64)),
      'invalid reference format: repository name (library/FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF) must be lowercase',
    );
  });
});

describe('normalizeReference', () => {
  it('adds the latest tag when there is neither tag nor digest', () => {
    assert.equal(referenceString(normalizeReference('ubuntu')), 'docker.io/library/ubuntu:latest');
    assert.equal(referenceString(normalizeReference(`ubuntu@${sha}`)), `docker.io/library/ubuntu@${sha}`);
    assert.equal(referenceString(normalizeReference('ubuntu:1')), 'docker.io/library/ubuntu:1');
  });

  it('keeps both tag and digest', () => {
    assert.equal(referenceString(normalizeReference(`ubuntu:1@${sha}`)), `docker.io/library/ubuntu:1@${sha}`);
  });

  it('normalises and re-validates a Reference object', () => {
    assert.deepEqual(normalizeReference(parseRawReference('ubuntu')), {
      domain: 'docker.io',
      path: 'library/ubuntu',
      tag: 'latest',
    });
    const r = normalizeReference('busybox');
    assert.deepEqual(normalizeReference(r), r);
    assert.throws(() => normalizeReference({ domain: 'x.io', path: 'UP' }), {
      code: 'DRAY_INVALID_REFERENCE',
    });
  });
});

describe('parseDockerRef', () => {
  it('drops the tag when a digest is present', () => {
    assert.equal(referenceString(parseDockerRef(`x:1@${sha}`)), `docker.io/library/x@${sha}`);
    assert.equal(referenceString(parseDockerRef('x')), 'docker.io/library/x:latest');
  });
});

describe('string forms', () => {
  const cases: Array<[string, string, string, string]> = [
    // input, referenceString, familiarString, familiarName
    ['ubuntu', 'docker.io/library/ubuntu', 'ubuntu', 'ubuntu'],
    ['ubuntu:latest', 'docker.io/library/ubuntu:latest', 'ubuntu:latest', 'ubuntu'],
    [`user/app@${sha}`, `docker.io/user/app@${sha}`, `user/app@${sha}`, 'user/app'],
    ['localhost:5000/x:1', 'localhost:5000/x:1', 'localhost:5000/x:1', 'localhost:5000/x'],
    ['library/a/b', 'docker.io/library/a/b', 'library/a/b', 'library/a/b'],
    [`n:t@${sha}`, `docker.io/library/n:t@${sha}`, `n:t@${sha}`, 'n'],
  ];
  for (const [input, full, familiar, name] of cases) {
    it(input.slice(0, 30), () => {
      const r = parseReference(input);
      assert.equal(referenceString(r), full);
      assert.equal(familiarString(r), familiar);
      assert.equal(familiarName(r), name);
    });
  }

  it('repositoryName is domain/path', () => {
    assert.equal(repositoryName(parseReference('ubuntu:1')), 'docker.io/library/ubuntu');
    assert.equal(repositoryName(parseRawReference('ubuntu:1')), 'ubuntu');
  });
});

describe('withTag and withDigest', () => {
  const base = parseReference('x');

  it('set one part and keep the other', () => {
    const tagged = withTag(base, 'V1');
    assert.deepEqual(tagged, { ...base, tag: 'V1' });
    const both = withDigest(tagged, sha);
    assert.deepEqual(both, { ...base, tag: 'V1', digest: sha });
    assert.deepEqual(withTag(both, 'v2'), { ...base, tag: 'v2', digest: sha });
  });

  it('validate what they add', () => {
    invalid(() => withTag(base, '-x'), 'invalid tag format');
    invalid(() => withTag(base, 't'.repeat(129)), 'invalid tag format');
    invalid(() => withDigest(base, 'foo'), 'invalid digest format');
    invalid(() => withDigest(base, `sha256:${'f'.repeat(37)}`), 'invalid checksum digest length');
    invalid(() => withDigest(base, `sha1:${'f'.repeat(40)}`), 'unsupported digest algorithm');
  });

  it('isValidTag follows [\\w][\\w.-]{0,127}', () => {
    assert.ok(isValidTag('latest'));
    assert.ok(isValidTag('_a.B-1'));
    assert.ok(isValidTag('t'.repeat(128)));
    assert.ok(!isValidTag('t'.repeat(129)));
    assert.ok(!isValidTag('.x'));
    assert.ok(!isValidTag(''));
    assert.ok(!isValidTag('a:b'));
  });
});

describe('familiarMatch', () => {
  const ref = parseReference('example.com/foo/bar:1');

  it('matches the familiar string or name with path.Match rules', () => {
    assert.ok(familiarMatch('example.com/foo/*', ref));
    assert.ok(familiarMatch('*/foo/bar:?', ref));
    assert.ok(!familiarMatch('*', ref), '* does not cross /');
    assert.ok(familiarMatch('ubuntu', parseReference('docker.io/library/ubuntu:22.04')));
    assert.ok(familiarMatch('[a-z]*', parseReference('ubuntu')));
    assert.ok(!familiarMatch('[^u]*', parseReference('ubuntu')));
    assert.ok(familiarMatch('ub\\untu', parseReference('ubuntu')));
    assert.ok(familiarMatch('sha256:*', parseDigest(sha)));
  });

  it('reports a bad pattern even when it would not match', () => {
    for (const p of ['[', '[]', '[-x]', 'x\\', '[a-', 'zz[']) {
      assert.throws(() => familiarMatch(p, ref), {
        name: 'DrayError',
        code: 'DRAY_INVALID_ARGUMENT',
        message: `syntax error in pattern: ${p}`,
      });
    }
  });
});

describe('performance', () => {
  // The grammar runs on a backtracking engine; none of these may take more than linear time.
  const n = 200_000;
  const inputs = [
    `${'a'.repeat(n)}!`,
    `${'a-'.repeat(n / 2)}!`,
    `${'a.'.repeat(n / 2)}!`,
    `${'a_'.repeat(n / 2)}!`,
    `${'a/'.repeat(n / 2)}!`,
    `${'a-a'.repeat(n / 3)}:${'b'.repeat(200)}`,
    `a${'-'.repeat(n)}!`,
    `a@${'a.'.repeat(n / 2)}b:${'f'.repeat(64)}`,
    `[${':'.repeat(n)}/x`,
    `${'A'.repeat(n)}!`,
    `x/${'a'.repeat(n)}`,
  ];
  for (const s of inputs) {
    it(`rejects ${JSON.stringify(s.slice(0, 12))}… (${s.length} chars) quickly`, () => {
      const start = performance.now();
      for (const parse of [parseRawReference, parseReference, parseRawName]) {
        assert.throws(() => parse(s), { code: 'DRAY_INVALID_REFERENCE' });
      }
      assert.ok(performance.now() - start < 500, `took ${performance.now() - start} ms`);
    });
  }
});
