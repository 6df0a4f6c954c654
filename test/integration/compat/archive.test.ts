/**
 * docker cp both ways (running and stopped containers), the path-stat header, archive errors, and docker export.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDaemon } from '../../helpers/daemon.js';
import { loadBusybox } from '../../helpers/fixtures.js';

const run = promisify(execFile);
const V = '/v1.41';

const d = await startDaemon(t);
await loadBusybox(d.socket);
const docker = async (...args: string[]): Promise<string> =>
  (await run('docker', ['-H', `unix://${d.socket}`, ...args], { timeout: 60_000, encoding: 'utf8' })).stdout;
const work = mkdtempSync('/tmp/psca-');
t.teardown(() => rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));

const mountsUnder = (dir: string): number => readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.includes(` ${dir}/`)).length;

/** Raw request whose body is a Buffer (PUT of a tar). */
function put(path: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath: d.socket, method: 'PUT', path, headers: { 'Content-Type': 'application/x-tar', 'Content-Length': String(body.length) } },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function decodeStat(header: string | string[] | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(header), 'base64').toString('utf8'));
}

t.test('docker cp both ways with a running container', async (t) => {
  await docker('run', '-d', '--name', 'box', '--tmpfs', '/scratch', 'busybox', 'sleep', '1000');
  const out = join(work, 'out');
  mkdirSync(out);
  await docker('cp', 'box:/etc/passwd', join(out, 'passwd'));
  t.match(readFileSync(join(out, 'passwd'), 'utf8'), /^root:x:0:0:/);
  await docker('cp', 'box:/etc', join(out, 'etc'));
  t.ok(statSync(join(out, 'etc', 'hosts')).isFile(), 'a directory, with the files the container sees at /etc');

  // A tree with a symlink, into a directory that exists only inside the container (a tmpfs mount).
  const src = join(work, 'tree');
  mkdirSync(join(src, 'sub'), { recursive: true });
  writeFileSync(join(src, 'sub', 'file'), 'content\n');
  symlinkSync('sub/file', join(src, 'link'));
  await docker('cp', src, 'box:/scratch/');
  const back = join(out, 'tree-back');
  await docker('cp', 'box:/scratch/tree', back);
  t.equal(readFileSync(join(back, 'sub', 'file'), 'utf8'), 'content\n');
  t.equal(readlinkSync(join(back, 'link')), 'sub/file', 'symlinks are copied as symlinks');

  writeFileSync(join(work, 'one.txt'), 'one\n');
  await docker('cp', join(work, 'one.txt'), 'box:/root/renamed.txt');
  const tarList = await run('sh', ['-c', `docker -H unix://${d.socket} cp box:/root/renamed.txt - | tar tvf -`]);
  t.match(tarList.stdout, /-rw-r--r-- 0\/0 +4 .* renamed\.txt/, 'owned by root, as Docker does without -a');

  const head = await d.request('HEAD', `${V}/containers/box/archive?path=/etc/passwd`);
  t.equal(head.status, 200);
  t.match(decodeStat(head.headers['x-docker-container-path-stat']), { name: 'passwd', mode: 0o644, linkTarget: '' });
  const dir = await d.request('HEAD', `${V}/containers/box/archive?path=/scratch/tree/`);
  t.equal(decodeStat(dir.headers['x-docker-container-path-stat']).mode, 2 ** 31 + 0o755, 'Go FileMode: ModeDir | perm');
  const link = decodeStat((await d.request('HEAD', `${V}/containers/box/archive?path=/scratch/tree/link`)).headers['x-docker-container-path-stat']);
  t.equal(link.linkTarget, '/scratch/tree/sub/file');
  t.equal(link.mode, 2 ** 27 + 0o777, 'ModeSymlink');

  const missing = await d.request('GET', `${V}/containers/box/archive?path=/nope`);
  t.equal(missing.status, 404);
  t.equal(missing.json().cause, 'no such file or directory');
  t.equal((await d.request('GET', `${V}/containers/box/archive`)).status, 400, 'path is required');
  t.equal((await d.request('GET', `${V}/containers/nope/archive?path=/`)).status, 404);
  t.equal((await put(`${V}/containers/box/archive?path=/etc/passwd`, Buffer.alloc(1024))).status, 400, 'not a directory');
  t.equal((await put(`${V}/containers/box/archive?path=/nope`, Buffer.alloc(1024))).status, 404);
});

t.test('docker cp with a stopped container mounts its rootfs only for the copy', async (t) => {
  await docker('stop', '-t', '0', 'box');
  const containerDir = join(d.root, 'containers');
  t.equal(mountsUnder(containerDir), 0, 'stopped: nothing mounted');
  const out = join(work, 'stopped.txt');
  await docker('cp', 'box:/root/renamed.txt', out);
  t.equal(readFileSync(out, 'utf8'), 'one\n', 'what was copied in while it ran is in its rootfs');
  writeFileSync(join(work, 'two.txt'), 'two\n');
  await docker('cp', join(work, 'two.txt'), 'box:/two.txt');
  await docker('start', 'box');
  const shown = await run('sh', ['-c', `docker -H unix://${d.socket} cp box:/two.txt - | tar xOf -`]);
  t.equal(shown.stdout, 'two\n', 'the running container sees the file copied in while it was stopped');
  await docker('stop', '-t', '0', 'box');
  t.equal(mountsUnder(containerDir), 0, 'the borrowed mount was released');
});

t.test('docker export writes the whole root filesystem', async (t) => {
  const file = join(work, 'export.tar');
  await docker('export', '-o', file, 'box');
  const { stdout } = await run('tar', ['tf', file], { maxBuffer: 10 * 1024 * 1024 });
  const names = stdout.split('\n');
  t.ok(names.includes('bin/'));
  t.ok(names.includes('bin/busybox'));
  t.ok(names.includes('two.txt'));
  t.notOk(names.some((n) => n.startsWith('/') || n.startsWith('./')), 'relative names, as docker export');
  t.equal(mountsUnder(join(d.root, 'containers')), 0);
  await docker('rm', 'box');
  t.equal((await d.request('GET', `${V}/containers/box/export`)).status, 404);
});
