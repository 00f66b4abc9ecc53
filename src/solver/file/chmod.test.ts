import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, lstat, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { requireTool, tempDir } from '../../../test/harness/tools.ts';
import { isDrayError } from '../../errors.ts';
import { applyMode, parseMode } from './chmod.ts';

const sym = (text: string, mode: number, isDir = false) => applyMode(parseMode(text), mode, isDir);

test('parseMode: octal values and the errors BuildKit gives', () => {
  assert.deepEqual(parseMode('0755'), { kind: 'octal', mode: 0o755 });
  assert.deepEqual(parseMode('4755'), { kind: 'octal', mode: 0o4755 });
  assert.equal(applyMode(parseMode('644'), 0o100777, false), 0o644);
  assert.equal(applyMode(parseMode('u+'), 0o640, false), 0o640, 'an empty permission list is valid');
  for (const bad of ['10000', '089', '', 'u', 'z+x', 'u+x,', 'u+q', '+x,,g+w', 'u+x;']) {
    assert.throws(
      () => applyMode(parseMode(bad), 0o644, false),
      (e: unknown) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
      bad,
    );
  }
});

test('symbolic modes: relative to each file, BSD setmode rules', () => {
  assert.equal(sym('u+x', 0o644), 0o744);
  assert.equal(sym('+x', 0o644), 0o755);
  assert.equal(sym('g-w', 0o664), 0o644);
  assert.equal(sym('o=r', 0o777), 0o774);
  assert.equal(sym('u+x,g-w,o=r', 0o666), 0o744);
  assert.equal(sym('a+X', 0o600), 0o600, 'X: not for a plain file');
  assert.equal(sym('a+X', 0o700), 0o711, 'X: an executable file');
  assert.equal(sym('a+rX', 0o700, true), 0o755, 'X: a directory');
  assert.equal(sym('a=rX', 0o700, true), 0o555, 'X with = (dchapes-mode adds an X command after the =)');
  assert.equal(sym('u=rwX,go=rX', 0o700), 0o755, 'the Dockerfile reference example: an executable file');
  assert.equal(sym('u=rwX,go=rX', 0o600), 0o644, 'a plain file gets no x');
  assert.equal(sym('a-X', 0o755), 0o644, '-X clears like -x');
  assert.equal(sym('go=u-w', 0o751), 0o755, 'copy the user bits minus w');
  assert.equal(sym('g=u', 0o640), 0o660);
  assert.equal(sym('u=', 0o755), 0o055);
  assert.equal(sym('=', 0o4755), 0o000, '= with no who clears setuid too');
  assert.equal(sym('u+s', 0o755), 0o4755);
  assert.equal(sym('g+s', 0o755), 0o2755);
  assert.equal(sym('o+s', 0o755), 0o755, 's means nothing for other');
  assert.equal(sym('+t', 0o755), 0o1755);
  assert.equal(sym('o+t', 0o755), 0o755, 'BSD: t needs a who other than o');
  assert.equal(sym('a-x,a+X', 0o755), 0o755, 'BSD: X looks at the original mode');
  assert.equal(sym('u+rw-x', 0o100), 0o600, 'several ops in one clause');
  assert.equal(sym('ug+w,o-rwx', 0o555), 0o770);
  assert.equal(sym('=rw', 0o1755), 0o1666, '= without who keeps the sticky bit');
});

test('symbolic modes agree with GNU chmod where BSD and GNU rules coincide', async (t) => {
  if (!requireTool(t, 'chmod')) return;
  const dir = await tempDir(t);
  const cases = [
    'u+x',
    '+x',
    'g-w',
    'o=r',
    'u+x,g-w,o=r',
    'a+rX',
    'go+X',
    'go=u-w',
    'g=u',
    'u=',
    'ug+w,o-rwx',
    'u+s',
    'a+rwx',
  ];
  const modes = [0o644, 0o600, 0o700, 0o751, 0o555, 0o777, 0o640];
  let i = 0;
  for (const c of cases) {
    for (const m of modes) {
      for (const isDir of [false, true]) {
        const p = join(dir, `f${i++}`);
        if (isDir) await mkdir(p);
        else await writeFile(p, '');
        await chmod(p, m);
        const r = spawnSync('sh', ['-c', `umask 0 && chmod ${c} "$1"`, 'sh', p]);
        assert.equal(r.status, 0, String(r.stderr));
        const got = (await lstat(p)).mode & 0o7777;
        // GNU chmod keeps a directory's setgid bit unless told otherwise; compare without it.
        const mask = isDir ? 0o5777 : 0o7777;
        assert.equal(sym(c, m, isDir) & mask, got & mask, `${c} on ${m.toString(8)}${isDir ? ' (dir)' : ''}`);
      }
    }
  }
});
