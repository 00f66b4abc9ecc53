import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { formatScope, normalizeScopes, parseChallenges, parseScope, scopesKey } from './challenge.ts';

describe('parseChallenges', () => {
  const vectors: [
    string,
    string | string[] | undefined,
    { scheme: string; params: Record<string, string> }[],
  ][] = [
    ['undefined', undefined, []],
    ['empty', '', []],
    [
      'basic realm',
      'Basic realm="Registry Realm"',
      [{ scheme: 'basic', params: { realm: 'Registry Realm' } }],
    ],
    [
      'docker hub bearer',
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      [
        {
          scheme: 'bearer',
          params: {
            realm: 'https://auth.docker.io/token',
            service: 'registry.docker.io',
            scope: 'repository:library/alpine:pull',
          },
        },
      ],
    ],
    [
      'case-insensitive scheme and names, values keep case',
      'BEARER Realm="https://A/Token", SERVICE=Svc',
      [{ scheme: 'bearer', params: { realm: 'https://A/Token', service: 'Svc' } }],
    ],
    [
      'two challenges in one header',
      'Bearer realm="https://a/token", service="a", Basic realm="b"',
      [
        { scheme: 'bearer', params: { realm: 'https://a/token', service: 'a' } },
        { scheme: 'basic', params: { realm: 'b' } },
      ],
    ],
    [
      'quoted string with escapes and commas',
      'Basic realm="a \\"quoted\\", \\\\ realm", charset="UTF-8"',
      [{ scheme: 'basic', params: { realm: 'a "quoted", \\ realm', charset: 'UTF-8' } }],
    ],
    [
      'token68',
      'Negotiate YII=, Basic realm="x"',
      [
        { scheme: 'negotiate', params: { '': 'YII=' } },
        { scheme: 'basic', params: { realm: 'x' } },
      ],
    ],
    ['token68 at end', 'NTLM abc+/de==', [{ scheme: 'ntlm', params: { '': 'abc+/de==' } }]],
    [
      'scheme without params, then another',
      'Negotiate, Basic realm=simple',
      [
        { scheme: 'negotiate', params: {} },
        { scheme: 'basic', params: { realm: 'simple' } },
      ],
    ],
    [
      'bws around = and empty list elements',
      ' , Bearer realm = "r" ,, service= s ,',
      [{ scheme: 'bearer', params: { realm: 'r', service: 's' } }],
    ],
    [
      'unquoted url value (lenient)',
      'Bearer realm=https://auth.example.com/token?x=1,service=reg',
      [{ scheme: 'bearer', params: { realm: 'https://auth.example.com/token?x=1', service: 'reg' } }],
    ],
    ['first duplicate wins', 'Basic realm="a", realm="b"', [{ scheme: 'basic', params: { realm: 'a' } }]],
    ['unterminated quote', 'Basic realm="abc', [{ scheme: 'basic', params: { realm: 'abc' } }]],
    [
      'several header values',
      ['Basic realm="a"', 'Bearer realm="b",error="insufficient_scope"'],
      [
        { scheme: 'basic', params: { realm: 'a' } },
        { scheme: 'bearer', params: { realm: 'b', error: 'insufficient_scope' } },
      ],
    ],
    ['empty quoted value', 'Basic realm=""', [{ scheme: 'basic', params: { realm: '' } }]],
  ];
  for (const [name, header, want] of vectors) {
    test(name, () => assert.deepEqual(parseChallenges(header), want));
  }

  test('garbage never throws', () => {
    for (const s of ['"', '=', ',,,', '==abc', 'Basic "x"', '\\', 'Basic realm="\\', '@@ Basic realm=x']) {
      assert.doesNotThrow(() => parseChallenges(s));
    }
    assert.deepEqual(parseChallenges('@@, Basic realm=x'), [{ scheme: 'basic', params: { realm: 'x' } }]);
  });
});

describe('scopes', () => {
  test('format and parse round-trip', () => {
    const s = { type: 'repository' as const, name: 'library/alpine', actions: ['pull', 'push'] };
    assert.equal(formatScope(s), 'repository:library/alpine:pull,push');
    assert.deepEqual(parseScope('repository:library/alpine:pull,push'), s);
    assert.deepEqual(parseScope('registry:catalog:*'), { type: 'registry', name: 'catalog', actions: ['*'] });
    assert.deepEqual(parseScope('repository:a:b:pull'), {
      type: 'repository',
      name: 'a:b',
      actions: ['pull'],
    });
  });

  test('parse rejects malformed scopes', () => {
    for (const s of [
      '',
      'repository',
      'repository:x',
      'repository::pull',
      'repository:x:',
      'plugin:x:pull',
    ]) {
      assert.throws(
        () => parseScope(s),
        (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT') && e.message.includes('invalid scope'),
        s,
      );
    }
  });

  test('normalize merges, dedupes and sorts', () => {
    const n = normalizeScopes([
      { type: 'repository', name: 'b', actions: ['push', 'pull'] },
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'repository', name: 'b', actions: ['pull'] },
    ]);
    assert.deepEqual(n, [
      { type: 'repository', name: 'a', actions: ['pull'] },
      { type: 'repository', name: 'b', actions: ['pull', 'push'] },
    ]);
    assert.equal(
      scopesKey([
        { type: 'repository', name: 'b', actions: ['push', 'pull'] },
        { type: 'repository', name: 'a', actions: ['pull'] },
      ]),
      scopesKey([
        { type: 'repository', name: 'a', actions: ['pull'] },
        { type: 'repository', name: 'b', actions: ['pull', 'push', 'pull'] },
      ]),
    );
  });
});
