import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isDrayError } from '../errors.ts';
import { containerResolvConf, hostsFile } from './net-files.ts';
import { createSpec, defaultPath, mergeEnv, type SpecInput } from './spec.ts';

const base: SpecInput = {
  rootfs: '/r',
  args: ['sh'],
  env: [],
  cwd: '/',
  uid: 0,
  gid: 0,
  additionalGids: [],
  hostname: 'h',
  network: 'none',
  mounts: [],
  hostsPath: '/b/hosts',
  resolvConfPath: '/b/resolv.conf',
  nofile: 1048576,
  cgroupNamespace: false,
};

test('mergeEnv: default PATH, replaced or removed like containerd', () => {
  assert.deepEqual(mergeEnv([]), [`PATH=${defaultPath}`]);
  assert.deepEqual(mergeEnv(['A=1', 'PATH=/x', 'B=']), ['PATH=/x', 'A=1', 'B=']);
  assert.deepEqual(mergeEnv(['PATH', 'A=1']), ['A=1']);
  assert.deepEqual(mergeEnv(['LONELY', 'A=b=c']), [`PATH=${defaultPath}`, 'A=b=c']);
});

test('createSpec: process, user groups, namespaces', () => {
  const s = createSpec({ ...base, uid: 1000, gid: 1001, additionalGids: [10, 999] });
  assert.deepEqual(s.process.user, { uid: 1000, gid: 1001, additionalGids: [1001, 10, 999] });
  assert.deepEqual(
    createSpec({ ...base, gid: 10, additionalGids: [5, 10] }).process.user.additionalGids,
    [5, 10],
  );
  assert.equal(s.process.noNewPrivileges, true);
  assert.equal(s.process.terminal, false);
  assert.equal(s.process.capabilities.bounding.length, 14);
  assert.ok(!('inheritable' in s.process.capabilities));
  assert.deepEqual(s.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.deepEqual(
    s.linux.namespaces.map((n) => n.type),
    ['pid', 'ipc', 'uts', 'mount', 'network'],
  );
  const hostNet = createSpec({ ...base, network: 'host', cgroupNamespace: true });
  assert.deepEqual(
    hostNet.linux.namespaces.map((n) => n.type),
    ['pid', 'ipc', 'uts', 'mount', 'cgroup'],
  );
  assert.ok(!s.mounts.some((m) => m.destination === '/run'), 'no /run tmpfs (moby/buildkit#429)');
  assert.throws(
    () => createSpec({ ...base, args: [] }),
    (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
  );
});

test('createSpec: request mounts after the defaults, later ones replacing earlier', () => {
  const s = createSpec({
    ...base,
    mounts: [
      { type: 'bind', source: '/src', destination: '/data/', readonly: true },
      { type: 'tmpfs', destination: '/tmp', size: 1 << 20 },
      { type: 'bind', source: '/my-hosts', destination: '/etc/hosts' },
    ],
  });
  const byDest = new Map(s.mounts.map((m) => [m.destination, m]));
  assert.deepEqual(byDest.get('/data'), {
    destination: '/data',
    type: 'bind',
    source: '/src',
    options: ['rbind', 'ro'],
  });
  assert.deepEqual(byDest.get('/tmp'), {
    destination: '/tmp',
    type: 'tmpfs',
    source: 'tmpfs',
    options: ['nosuid', 'size=1048576'],
  });
  assert.equal(byDest.get('/etc/hosts')?.source, '/my-hosts');
  assert.equal(s.mounts.filter((m) => m.destination === '/etc/hosts').length, 1);
  assert.equal(s.mounts[0]?.destination, '/proc');
  for (const bad of [
    { type: 'bind' as const, destination: 'rel', source: '/x' },
    { type: 'bind' as const, destination: '/x' },
    { type: 'bind' as const, destination: '/x', source: 'relative/src' },
    { type: 'tmpfs' as const, destination: '/' },
    { type: 'tmpfs' as const, destination: '/t', size: -1 },
  ]) {
    assert.throws(
      () => createSpec({ ...base, mounts: [bad] }),
      (e) => isDrayError(e, 'DRAY_INVALID_ARGUMENT'),
    );
  }
});

test('hostsFile and containerResolvConf follow BuildKit', () => {
  assert.equal(hostsFile('box'), '127.0.0.1\tlocalhost box\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  const host = [
    '# generated',
    'nameserver 127.0.0.53',
    'nameserver 10.0.0.2',
    'nameserver ::1',
    'nameserver bogus',
    'search a.example',
    'search b.example c.example',
    'options ndots:2',
    'options edns0',
    'sortlist 130.155.160.0/255.255.240.0',
  ].join('\n');
  assert.equal(
    containerResolvConf(host, 'none'),
    'nameserver 10.0.0.2\nsearch b.example c.example\noptions ndots:2 edns0\nsortlist 130.155.160.0/255.255.240.0\n',
  );
  assert.match(
    containerResolvConf(host, 'host'),
    /^nameserver 127\.0\.0\.53\nnameserver 10\.0\.0\.2\nnameserver ::1\n/,
  );
  const defaults =
    'nameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844\n';
  assert.equal(containerResolvConf('nameserver 127.0.0.11\n', 'none'), defaults);
  assert.equal(containerResolvConf(undefined, 'host'), defaults);
});
