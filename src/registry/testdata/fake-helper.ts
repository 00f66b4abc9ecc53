// A docker-credential-<name> helper for tests: a tiny node script over a JSON file, with
// failure modes switched by FAKE_MODE. Shared by the credential tests.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export async function fakeHelper(t: { after: (fn: () => Promise<void>) => void }, name = 'fake') {
  const dir = await mkdtemp(join(tmpdir(), 'dray-helper-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const db = join(dir, 'db.json');
  const script = `#!${process.execPath}
const fs = require('node:fs');
const action = process.argv[2];
const input = fs.readFileSync(0, 'utf8');
const file = process.env.FAKE_STORE;
const db = fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : {};
fs.appendFileSync(file + '.log', action + '\\n');
const mode = process.env.FAKE_MODE || '';
const fail = (msg) => { process.stdout.write(msg + '\\n'); process.exit(1); };
if (mode === 'hang') setTimeout(() => {}, 1e9);
else if (mode === 'fail') fail('keychain is locked; input was: ' + input);
else if (mode === 'json-fail') { process.stdout.write(JSON.stringify(Object.values(db)[0] || {})); process.exit(3); }
else if (mode === 'garbage') process.stdout.write('{not json');
else if (mode === 'empty') process.exit(0);
else if (mode === 'stderr') { process.stderr.write('gpg: decryption failed\\n'); process.exit(2); }
else switch (action) {
  case 'get': { const c = db[input.trim()]; if (!c) fail('credentials not found in native keychain'); process.stdout.write(JSON.stringify(c)); break; }
  case 'store': { const c = JSON.parse(input); db[c.ServerURL] = c; fs.writeFileSync(file, JSON.stringify(db)); break; }
  case 'erase': { if (!db[input.trim()]) fail('credentials not found in native keychain'); delete db[input.trim()]; fs.writeFileSync(file, JSON.stringify(db)); break; }
  case 'list': { const m = {}; for (const [k, v] of Object.entries(db)) m[k] = v.Username; process.stdout.write(JSON.stringify(m)); break; }
  default: fail('unknown action');
}
`;
  const program = join(dir, `docker-credential-${name}`);
  await writeFile(program, script);
  await chmod(program, 0o755);
  const env = { PATH: dir, FAKE_STORE: db };
  return {
    dir,
    env,
    db,
    log: async () => (await readFile(`${db}.log`, 'utf8').catch(() => '')).split('\n').filter(Boolean),
  };
}
