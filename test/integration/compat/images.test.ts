/**
 * Docker-compatible image endpoints through the real docker CLI and raw requests; expected bodies and statuses
 * are Podman 4.3.1's compat answers on the same requests unless a comment says otherwise.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startDaemon } from '../../helpers/daemon.js';
import { BUSYBOX_DOCKER_ARCHIVE, BUSYBOX_ID, BUSYBOX_ROOTFS, postFile } from '../../helpers/fixtures.js';

const run = promisify(execFile);
const V = '/v1.41';

const d = await startDaemon(t);
const docker = async (...args: string[]): Promise<string> =>
  (await run('docker', ['-H', `unix://${d.socket}`, ...args], { timeout: 60_000 })).stdout.trim();
const work = mkdtempSync('/tmp/psci-');
t.teardown(() => rmSync(work, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));

t.test('docker load -i prints Docker\'s message; the reply is a JSON message stream', async (t) => {
  t.equal(await docker('load', '-i', BUSYBOX_DOCKER_ARCHIVE), 'Loaded image: localhost/busybox:latest');
  const res = await postFile(d.socket, `${V}/images/load`, BUSYBOX_DOCKER_ARCHIVE);
  t.equal(res.status, 200);
  t.equal(res.body, '{"stream":"Loaded image: localhost/busybox:latest\\n"}\n');
  const head = await d.request('GET', `${V}/images/json`);
  t.equal(head.status, 200);
});

t.test('docker images, inspect, history', async (t) => {
  t.match(await docker('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'), `localhost/busybox:latest ${BUSYBOX_ID().slice(0, 12)}`);
  const list = (await d.request('GET', `${V}/images/json`)).json();
  t.equal(list.length, 1);
  t.equal(list[0].Id, `sha256:${BUSYBOX_ID()}`, 'Docker ids carry sha256:');
  t.same(list[0].RepoTags, ['localhost/busybox:latest']);

  const info = JSON.parse(await docker('image', 'inspect', 'busybox'))[0];
  t.equal(info.Id, `sha256:${BUSYBOX_ID()}`);
  t.equal(info.Os, 'linux');
  // Clients put names with slashes into the path unescaped.
  const bySlash = await d.request('GET', `${V}/images/localhost/busybox:latest/json`);
  t.equal(bySlash.status, 200);
  t.equal(bySlash.json().Id, `sha256:${BUSYBOX_ID()}`);
  const missing = await d.request('GET', `${V}/images/nope/json`);
  t.equal(missing.status, 404);
  t.match(missing.json().message, /No such image/, 'docker-py looks for "No such image"');

  const history = (await d.request('GET', `${V}/images/localhost/busybox/history`)).json();
  t.match(history, [{ Id: BUSYBOX_ID(), CreatedBy: /ADD file:/, Tags: null }]);
  t.equal((await d.request('GET', `${V}/images/nope/history`)).status, 404);
  t.equal((await d.request('GET', `${V}/images/busybox/bogus`)).status, 404);
});

t.test('docker tag, rmi; tag and remove status codes', async (t) => {
  await docker('tag', 'busybox', 'example.com/team/bb:v2');
  t.match(await docker('images', '--format', '{{.Repository}}:{{.Tag}}'), /example\.com\/team\/bb:v2/);
  t.equal(await docker('rmi', 'example.com/team/bb:v2'), 'Untagged: example.com/team/bb:v2');

  const tag = await d.request('POST', `${V}/images/busybox/tag?repo=mine&tag=t1`);
  t.equal(tag.status, 201);
  t.equal(tag.text, '');
  t.equal((await d.request('POST', `${V}/images/busybox/tag?tag=v1`)).json().cause, 'repo parameter is required to tag an image');
  t.equal((await d.request('POST', `${V}/images/nope/tag?repo=x`)).status, 404);
  t.equal((await d.request('DELETE', `${V}/images/nope`)).status, 404);

  const untag = await d.request('DELETE', `${V}/images/mine:t1`);
  t.equal(untag.status, 200);
  t.same(untag.json(), [{ Untagged: 'localhost/mine:t1' }]);

  // In use by a container: 409, as Podman (and Docker) answer.
  const created = await d.request('POST', `${V}/containers/create?name=user`, { Image: 'busybox', Cmd: ['true'] });
  t.equal(created.status, 201);
  const inUse = await d.request('DELETE', `${V}/images/busybox`);
  t.equal(inUse.status, 409);
  t.equal(inUse.json().cause, 'image is in use by a container');
  await d.request('DELETE', `${V}/containers/user`);
});

t.test('docker save and images/get: docker archives that load back', async (t) => {
  const file = join(work, 'bb.tar');
  await docker('save', '-o', file, 'busybox');
  const { stdout } = await run('tar', ['tf', file]);
  t.match(stdout, /manifest\.json/);
  t.match(stdout, /repositories/);

  t.equal((await d.request('GET', `${V}/images/get`)).status, 400, 'names are required');
  t.equal((await d.request('GET', `${V}/images/get?names=nope`)).status, 404);
  const single = await d.request('GET', `${V}/images/localhost/busybox/get`);
  t.equal(single.status, 200);
  t.equal(single.headers['content-type'], 'application/x-tar');

  const removed = (await d.request('DELETE', `${V}/images/busybox`)).json();
  t.same(removed, [{ Untagged: 'localhost/busybox:latest' }, { Deleted: BUSYBOX_ID() }], 'Docker\'s order; bare IDs as Podman');
  t.equal(await docker('load', '-i', file), 'Loaded image: localhost/busybox:latest');
  t.equal(JSON.parse(await docker('image', 'inspect', 'busybox'))[0].Id, `sha256:${BUSYBOX_ID()}`);
});

t.test('import (create?fromSrc=-), pull errors in-band, prune', async (t) => {
  const imported = await postFile(
    d.socket,
    `${V}/images/create?fromSrc=-&repo=imported&tag=v1&message=hello&changes=${encodeURIComponent('CMD ["sh"]')}`,
    BUSYBOX_ROOTFS,
  );
  t.equal(imported.status, 200);
  const body = JSON.parse(imported.body);
  t.match(body, { status: /^sha256:[0-9a-f]{64}$/, progress: '', progressDetail: {} });
  t.equal(body.id, body.status);
  const info = (await d.request('GET', `${V}/images/imported:v1/json`)).json();
  t.same(info.Config.Cmd, ['sh']);
  t.equal(info.Comment, 'hello');

  // No registry is reachable: the error comes after the 200, as a Docker JSON message.
  const pull = await d.request('POST', `${V}/images/create?fromImage=example.invalid/nothing&tag=latest`);
  t.equal(pull.status, 200);
  t.equal(pull.headers['content-type'], 'application/json');
  const last = JSON.parse(pull.text.trim().split('\n').pop()!);
  t.type(last.error, 'string');
  t.equal(last.errorDetail.message, last.error);
  t.equal((await d.request('POST', `${V}/images/create`)).status, 400);

  t.same((await d.request('POST', `${V}/images/prune`)).json(), { ImagesDeleted: [], SpaceReclaimed: 0 }, 'nothing dangling');
  const all = await d.request('POST', `${V}/images/prune?filters=${encodeURIComponent('{"dangling":["false"]}')}`);
  t.equal(all.status, 200);
  t.same(all.json().ImagesDeleted.map((i: { Deleted: string }) => i.Deleted).sort(), [BUSYBOX_ID(), body.id.slice(7)].sort(), 'dangling=false prunes every unused image');
  t.ok(all.json().SpaceReclaimed > 0);
  t.same((await d.request('GET', `${V}/images/json`)).json(), []);
});
