import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatGoDuration, parseGoDuration } from './duration.ts';
import { expandCommand } from './expand.ts';
import { csvFields, parseMount, ramInBytes } from './run-mount.ts';
import type { Command } from './types.ts';

const identity = (w: string) => w;

test('csvFields: encoding/csv rules and messages', () => {
  assert.deepEqual(csvFields('type=cache,target=/x'), ['type=cache', 'target=/x']);
  assert.deepEqual(csvFields('"target=/a,b",ro'), ['target=/a,b', 'ro']);
  assert.deepEqual(csvFields('"a""b",c'), ['a"b', 'c']);
  assert.deepEqual(csvFields('a,,b,'), ['a', '', 'b', '']);
  assert.throws(() => csvFields('a"b'), {
    message: 'parse error on line 1, column 2: bare " in non-quoted-field',
  });
  assert.throws(() => csvFields('"ab'), {
    message: 'parse error on line 1, column 2: extraneous or missing " in quoted-field',
  });
  assert.throws(() => csvFields(''), { message: 'EOF' });
});

test('ramInBytes: go-units binary sizes', () => {
  assert.equal(ramInBytes('64m'), 64 * 1024 * 1024);
  assert.equal(ramInBytes('1g'), 1024 ** 3);
  assert.equal(ramInBytes('1.5KiB'), 1536);
  assert.equal(ramInBytes('100'), 100);
  assert.equal(ramInBytes('10 kb'), 10240);
  assert.equal(ramInBytes('10x'), undefined);
  assert.equal(ramInBytes('m'), undefined);
});

test('parseMount: defaults per type', () => {
  assert.deepEqual(parseMount('target=/src', identity), {
    type: 'bind',
    from: '',
    source: '',
    target: '/src',
    readOnly: true,
    sizeLimit: 0,
    cacheId: '',
    cacheSharing: '',
    required: false,
  });
  const cache = parseMount(
    'type=cache,dst=/root/.cache,id=go,sharing=locked,mode=0700,uid=1000,gid=1000',
    identity,
  );
  assert.equal(cache.readOnly, false);
  assert.equal(cache.cacheId, 'go');
  assert.equal(cache.cacheSharing, 'locked');
  assert.equal(cache.mode, 0o700);
  assert.equal(cache.uid, 1000);
  const tmpfs = parseMount('type=tmpfs,destination=/t,size=64m', identity);
  assert.equal(tmpfs.readOnly, false);
  assert.equal(tmpfs.sizeLimit, 64 * 1024 * 1024);
  const rw = parseMount('type=bind,source=a,target=/a,rw', identity);
  assert.equal(rw.readOnly, false);
  const secret = parseMount('type=secret,id=tok,env=TOKEN,required', identity);
  assert.equal(secret.required, true);
  assert.equal(secret.env, 'TOKEN');
  assert.equal(secret.readOnly, true);
});

test('parseMount: errors as BuildKit words them', () => {
  const cases: Array<[string, string]> = [
    ['type=volume,target=/x', 'unsupported mount type "volume"'],
    ['type=cahce,target=/x', 'unsupported mount type "cahce" (did you mean cache?)'],
    ['type=cache,target=/x,sharing=privte', 'unsupported sharing value "privte" (did you mean private?)'],
    ['target=/x,zzzz=1', "unexpected key 'zzzz' in 'zzzz=1'"],
    ['target=/x,tagret=1', "unexpected key 'tagret' in 'tagret=1' (did you mean target?)"],
    ['target=/x,nokey', "invalid field 'nokey' must be a key=value pair"],
    ['target=/x,required', "unexpected key 'required' for mount type 'bind'"],
    ['target=/x,size=1m', "unexpected key 'size' for mount type 'bind'"],
    ['type=tmpfs,target=/x,size=lots', 'invalid value for size: lots'],
    ['target=/x,ro=maybe', 'invalid value for ro: maybe'],
    ['type=cache,target=/x,mode=999', 'invalid value 999 for mode'],
    ['target=/x,uid=1', 'uid not allowed for "bind" type mounts'],
    ['type=secret', 'invalid secret mount. one of source, target required'],
    ['type=secret,id=a,source=b', "both source and id can't be set"],
    ['type=secret,id=a,from=x', 'secret mount should not have a from'],
    ['type=tmpfs,target=/x,sharing=shared', 'invalid cache sharing set for tmpfs mount'],
  ];
  for (const [spec, message] of cases) assert.throws(() => parseMount(spec, identity), { message }, spec);
});

test('parseMount without an expander reads only from (parse time)', () => {
  const m = parseMount('type=cache,target=/x,from=build,nokey,uid=1');
  assert.equal(m.from, 'build');
  assert.equal(m.type, 'bind');
  assert.equal(m.target, '');
  // A trailing $ is allowed, any other $ is not.
  assert.equal(parseMount('from=a$').from, 'a$');
});

test('parseMount expands every value with the expander', () => {
  const id = '$' + '{ID}'; // a Dockerfile variable reference, not a template
  const m = parseMount(`type=cache,target=$DIR,id=${id}`, (w) => w.replace('$DIR', '/c').replace(id, 'x'));
  assert.equal(m.target, '/c');
  assert.equal(m.cacheId, 'x');
});

test('Go durations: parse and format like time.ParseDuration / Duration.String', () => {
  const parsed: Array<[string, number]> = [
    ['0', 0],
    ['5s', 5e9],
    ['1m30s', 90e9],
    ['1.5h', 5400e9],
    ['300ms', 300e6],
    ['1h2m3.5s', 3723.5e9],
    ['10us', 10e3],
    ['10µs', 10e3],
    ['.5s', 0.5e9],
    ['-1s', -1e9],
  ];
  for (const [s, ns] of parsed) assert.equal(parseGoDuration(s), ns, s);
  assert.throws(() => parseGoDuration('1'), { message: 'time: missing unit in duration "1"' });
  assert.throws(() => parseGoDuration('1d'), { message: 'time: unknown unit "d" in duration "1d"' });
  assert.throws(() => parseGoDuration('abc'), { message: 'time: invalid duration "abc"' });
  assert.throws(() => parseGoDuration(''), { message: 'time: invalid duration ""' });
  const formatted: Array<[number, string]> = [
    [0, '0s'],
    [5e9, '5s'],
    [90e9, '1m30s'],
    [3600e9, '1h0m0s'],
    [1.5e9, '1.5s'],
    [300e6, '300ms'],
    [1500, '1.5µs'],
    [12, '12ns'],
    [3723.5e9, '1h2m3.5s'],
    [-2e9, '-2s'],
  ];
  for (const [ns, s] of formatted) assert.equal(formatGoDuration(ns), s, s);
});

test('expandCommand expands only what BuildKit expands', () => {
  const env: Record<string, string> = { A: 'x' };
  const expand = (w: string) => w.replaceAll('$A', env.A!);
  const base = { name: 'X', code: '', location: { startLine: 1, endLine: 1 }, comments: [] };
  const copy: Command = {
    kind: 'copy',
    ...base,
    from: '$A',
    chown: '$A',
    chmod: '$A',
    link: false,
    parents: false,
    excludePatterns: ['$A'],
    sourcePaths: ['$A'],
    destPath: '/$A',
    sourceContents: [
      { path: 'E', data: '$A', expand: true },
      { path: 'F', data: '$A', expand: false },
    ],
  };
  const c = expandCommand(copy, expand, (w) => `raw:${expand(w)}`);
  assert.ok(c.kind === 'copy');
  assert.equal(c.from, '$A'); // --from is never expanded
  assert.deepEqual(c.excludePatterns, ['$A']); // neither are excludes
  assert.equal(c.chown, 'x');
  assert.equal(c.chmod, 'x');
  assert.deepEqual(c.sourcePaths, ['x']);
  assert.equal(c.destPath, '/x');
  assert.deepEqual(
    c.sourceContents.map((s) => s.data),
    ['raw:x', '$A'],
  );
  assert.equal(copy.chown, '$A', 'the input is not changed');
  const run: Command = {
    kind: 'run',
    ...base,
    cmdLine: ['echo $A'],
    files: [],
    prependShell: true,
    mountSpecs: ['type=cache,target=/$A'],
    mounts: [],
    network: 'default',
    security: 'sandbox',
    devices: [],
  };
  const r = expandCommand(run, expand, expand);
  assert.ok(r.kind === 'run');
  assert.deepEqual(r.cmdLine, ['echo $A']);
  assert.equal(r.mounts[0]!.target, '/x');
  const cmd: Command = { kind: 'cmd', ...base, cmdLine: ['$A'], files: [], prependShell: true };
  assert.deepEqual(expandCommand(cmd, expand, expand), cmd);
});
