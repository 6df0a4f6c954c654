import t from 'tap';
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import os from 'node:os';
import { promisify } from 'node:util';
import { startDaemon } from '../../helpers/daemon.js';

const run = promisify(execFile);

const d = await startDaemon(t);

t.test('_ping answers like Podman on every path form', async (t) => {
  for (const path of ['/_ping', '/libpod/_ping', '/v4.3.1/libpod/_ping', '/v1.41/_ping', '/v1.0.0/libpod/_ping']) {
    const res = await d.request('GET', path);
    t.equal(res.status, 200, path);
    t.equal(res.text, 'OK');
    t.equal(res.headers['api-version'], '1.41');
    t.equal(res.headers['libpod-api-version'], '4.3.1');
    t.equal(res.headers['server'], 'Libpod/4.3.1 (linux)');
    t.equal(res.headers['docker-experimental'], 'true');
    t.equal(res.headers['cache-control'], 'no-cache');
    t.equal(res.headers['pragma'], 'no-cache');
    t.equal(res.headers['builder-version'], '');
    t.equal(res.headers['buildkit-version'], '');
    t.equal(res.headers['content-type'], 'text/plain; charset=utf-8');
    t.ok(res.headers['x-reference-id'], 'request id echoed');
  }
  const head = await d.request('HEAD', '/_ping');
  t.equal(head.status, 200);
  t.equal(head.body.length, 0, 'HEAD has no body');
  t.equal(head.headers['libpod-api-version'], '4.3.1');
});

t.test('a given X-Reference-Id is echoed', async (t) => {
  const res = await d.request('GET', '/_ping', undefined, { 'X-Reference-Id': 'abc123' });
  t.equal(res.headers['x-reference-id'], 'abc123');
});

t.test('version: Podman shape with podserve, conmon and runc components', async (t) => {
  for (const path of ['/version', '/libpod/version', '/v4.3.1/libpod/version', '/v1.41/version']) {
    const res = await d.request('GET', path);
    t.equal(res.status, 200, path);
    const v = res.json();
    t.equal(v.Version, '4.3.1');
    t.equal(v.ApiVersion, '1.41');
    t.equal(v.MinAPIVersion, '1.24');
    t.equal(v.Os, 'linux');
    t.equal(v.KernelVersion, os.release());
    const names = v.Components.map((c: { Name: string }) => c.Name);
    t.same(names, ['Podman Engine', 'podserve', 'Conmon', 'OCI Runtime (runc)']);
    t.match(v.Components[2].Version, /^conmon version \d+\.\d+\.\d+/);
    t.match(v.Components[3].Version, /^runc version \d+\.\d+\.\d+/);
    t.equal(v.Components[0].Details.APIVersion, '4.3.1');
  }
});

t.test('libpod info: real host facts', async (t) => {
  const res = await d.request('GET', '/v4.3.1/libpod/info');
  t.equal(res.status, 200);
  const info = res.json();
  t.equal(info.host.kernel, os.release());
  t.equal(info.host.cpus, os.cpus().length);
  t.equal(info.host.hostname, os.hostname());
  t.ok(info.host.memTotal > 0);
  t.match(info.host.cgroupVersion, /^v[12]$/);
  t.equal(info.host.cgroupManager, 'cgroupfs');
  t.equal(info.host.ociRuntime.name, 'runc');
  t.match(info.host.ociRuntime.version, /runc version/);
  t.match(info.host.conmon.version, /conmon version/);
  t.equal(info.store.graphRoot, d.root);
  t.equal(info.store.runRoot, d.runRoot);
  t.equal(info.store.containerStore.number, 0);
  t.equal(info.store.imageStore.number, 0);
  t.equal(info.version.APIVersion, '4.3.1');
});

t.test('compat info: Docker shape', async (t) => {
  const res = await d.request('GET', '/v1.41/info');
  t.equal(res.status, 200);
  const info = res.json();
  t.equal(info.OSType, 'linux');
  t.equal(info.NCPU, os.cpus().length);
  t.equal(info.DefaultRuntime, 'runc');
  t.equal(info.Containers, 0);
  t.equal(info.Images, 0);
  t.equal(info.DockerRootDir, d.root);
  t.equal(info.ServerVersion, '4.3.1');
});

t.test('errors use Podman\'s body', async (t) => {
  const missing = await d.request('GET', '/v4.3.1/libpod/nothing-here');
  t.equal(missing.status, 404);
  t.same(Object.keys(missing.json()).sort(), ['cause', 'message', 'response']);
  t.equal(missing.json().response, 404);

  const wrongMethod = await d.request('DELETE', '/_ping');
  t.equal(wrongMethod.status, 405);
  t.equal(wrongMethod.json().response, 405);

  const badVersion = await d.request('GET', '/v1.x/_ping');
  t.equal(badVersion.status, 400);
  t.match(badVersion.json().message, /invalid API version "1.x"/);

  const notAVersion = await d.request('GET', '/vabc/_ping');
  t.equal(notAVersion.status, 404, 'a segment that is not a version is just an unknown path');
});

t.test('the socket is 0660 and owned by root', async (t) => {
  const st = statSync(d.socket);
  t.ok(st.isSocket());
  t.equal(st.mode & 0o777, 0o660);
  t.equal(st.uid, 0);
});

t.test('podman --url version and info work against podserve', async (t) => {
  const version = await run('podman', ['--url', `unix://${d.socket}`, 'version'], { timeout: 30_000 });
  t.match(version.stdout, /Server:\s+Podman Engine/);
  t.match(version.stdout, /API Version:\s+4\.3\.1/);
  const info = await run('podman', ['--url', `unix://${d.socket}`, 'info', '--format', 'json'], { timeout: 30_000 });
  const parsed = JSON.parse(info.stdout);
  t.equal(parsed.host.kernel, os.release());
  t.equal(parsed.host.ociRuntime.name, 'runc');
});

t.test('docker -H version and info work against podserve', async (t) => {
  const version = await run('docker', ['-H', `unix://${d.socket}`, 'version'], { timeout: 30_000 });
  t.match(version.stdout, /Server:/);
  t.match(version.stdout, /API version:\s+1\.41/);
  t.notMatch(version.stderr, /error/i);
  const info = await run('docker', ['-H', `unix://${d.socket}`, 'info'], { timeout: 30_000 });
  t.match(info.stdout, /Server Version: 4\.3\.1/);
  t.notMatch(info.stderr, /WARNING/, 'no warnings Podman does not cause');
});
