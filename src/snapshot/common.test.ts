import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { Digest } from '../digest/index.ts';
import { chainId } from './index.ts';
import { ownedName, ownerAlive, parseOwner, self } from './owner.ts';

const a = 'sha256:ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb' as Digest;
const b = 'sha256:3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d' as Digest;
const c = 'sha256:2e7d2c03a9507ae265ecf5b5356885a53393a2029d241394997265a1a25aefc6' as Digest;

test('chainId follows image-spec: the first diffID, then sha256(parent + " " + diffID)', () => {
  // expected values from: printf '%s %s' "$parent" "$diffid" | sha256sum
  assert.equal(chainId([]), undefined);
  assert.equal(chainId([a]), a);
  assert.equal(chainId([a, b]), 'sha256:51c0c8ace48498d6f5fee6b0592cc06f2da0f3cbe09c5a34a97dce85c3889676');
  assert.equal(chainId([a, b, c]), 'sha256:2fce7f8ce91bcf0a1428b36e1024639fdbd9469eea762dba98aa749631885106');
  assert.notEqual(chainId([b, a]), chainId([a, b]));
});

test('owned names record this process; a dead owner or a reused pid is told apart', async () => {
  const name = ownedName('.rw');
  const o = parseOwner(name);
  assert.deepEqual(o, self);
  assert.equal(await ownerAlive(self), true);
  assert.equal(parseOwner('something-else'), undefined);
  // same pid, other start time: a process that used this pid before us
  assert.equal(await ownerAlive({ ...self, start: `${Number(self.start) - 1}` }), false);
  // another PID namespace cannot be judged from here: assumed alive
  assert.equal(await ownerAlive({ ...self, pid: 999_999, pidns: '1' }), true);
  const child = spawn('true');
  const pid = child.pid as number;
  await new Promise((r) => child.on('exit', r));
  assert.equal(await ownerAlive({ ...self, pid }), false);
});
