/**
 * Pull and push against a real registry: Debian's docker-registry (the CNCF distribution registry) on
 * 127.0.0.1 over plain HTTP, driven through podserve's libpod and Docker-compatible endpoints, podman-remote
 * and the docker CLI. Also: a manifest list built by hand, a corrupted blob, unknown images, and token and
 * Basic authentication through a small proxy in front of the registry.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import t from 'tap';
import { startDaemon, type Daemon } from '../../helpers/daemon.js';
import { BUSYBOX_ID, loadBusybox } from '../../helpers/fixtures.js';
import { listTree, makeTar } from './helpers.js';

const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function freePort(): Promise<number> {
  const srv = createNetServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

interface Registry {
  port: number;
  host: string;
  dataDir: string;
  url: string;
}

/** Starts docker-registry on a free loopback port with storage in a temp dir; stopped and removed at teardown. */
async function startRegistry(tt: { teardown: (fn: () => unknown) => void }): Promise<Registry> {
  const dir = await mkdtemp('/tmp/preg-');
  const dataDir = join(dir, 'data');
  const port = await freePort();
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${dataDir}`, '  delete:', '    enabled: true', 'http:', `  addr: 127.0.0.1:${port}`, ''].join('\n'),
  );
  const proc: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  tt.teardown(async () => {
    proc.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/v2/`)).status === 200) break;
    } catch {
      // not up yet
    }
    if (i > 200 || proc.exitCode !== null) throw new Error(`docker-registry did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return { port, host: `127.0.0.1:${port}`, dataDir, url };
}

/** Uploads a blob to the registry directly (monolithic POST + PUT). */
async function uploadBlob(reg: Registry, repo: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  if (start.status !== 202) throw new Error(`upload start: ${start.status}`);
  const location = new URL(start.headers.get('location')!, reg.url);
  location.searchParams.set('digest', digest);
  const put = await fetch(location, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': 'application/octet-stream' } });
  if (put.status !== 201) throw new Error(`upload: ${put.status} ${await put.text()}`);
  return digest;
}

async function putManifest(reg: Registry, repo: string, ref: string, body: unknown, mediaType: string): Promise<string> {
  const bytes = Buffer.from(JSON.stringify(body));
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { method: 'PUT', body: new Uint8Array(bytes), headers: { 'Content-Type': mediaType } });
  if (res.status !== 201) throw new Error(`manifest put: ${res.status} ${await res.text()}`);
  return sha256(bytes);
}

/** The digest the registry serves for repo:ref (HEAD, Docker-Content-Digest). */
async function registryDigest(reg: Registry, repo: string, ref: string): Promise<string | null> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'HEAD',
    headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json' },
  });
  return res.status === 200 ? res.headers.get('docker-content-digest') : null;
}

/** Reads a JSON-lines body (progress streams). */
function jsonLines(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A single-layer image unlike busybox (so no layer of it is in the store), uploaded to `repo:tag`. */
async function uploadSmallImage(reg: Registry, repo: string, tag: string, content: string): Promise<{ id: string; layerDigest: string; manifestDigest: string }> {
  const layerTar = await makeTar([{ name: 'hello.txt', data: content, mode: 0o644 }]);
  const layer = gzipSync(layerTar);
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/hello'] }, rootfs: { type: 'layers', diff_ids: [sha256(layerTar)] } }),
  );
  const layerDigest = await uploadBlob(reg, repo, layer);
  const configDigest = await uploadBlob(reg, repo, config);
  const manifestDigest = await putManifest(
    reg,
    repo,
    tag,
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
    },
    'application/vnd.oci.image.manifest.v1+json',
  );
  return { id: configDigest.slice('sha256:'.length), layerDigest, manifestDigest };
}

const quietPull = async (d: Daemon, reference: string, extra = ''): Promise<Record<string, unknown>> => {
  const res = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${encodeURIComponent(reference)}&tlsVerify=false&quiet=true${extra}`);
  if (res.status !== 200) throw new Error(`pull: ${res.status} ${res.text}`);
  const lines = jsonLines(res.text);
  return lines[lines.length - 1]!;
};

const inspect = async (d: Daemon, name: string): Promise<{ Id: string; Digest: string; RepoDigests: string[]; RepoTags: string[] }> => {
  const res = await d.request('GET', `/v4.3.1/libpod/images/${encodeURIComponent(name)}/json`);
  if (res.status !== 200) throw new Error(`inspect ${name}: ${res.status} ${res.text}`);
  return res.json();
};

const removeAll = async (d: Daemon): Promise<void> => {
  const res = await d.request('DELETE', '/v4.3.1/libpod/images/remove?all=true&force=true');
  if (res.status !== 200) throw new Error(`remove all: ${res.status} ${res.text}`);
};

let reg: Registry;
let d: Daemon;

t.before(async () => {
  reg = await startRegistry(t);
  d = await startDaemon(t);
});

t.test('push busybox, remove it, pull it back: same ID, and the digest the registry serves', async (t) => {
  await loadBusybox(d.socket);
  const push = await d.request('POST', `/v4.3.1/libpod/images/localhost%2Fbusybox:latest/push?destination=${reg.host}/busybox&tlsVerify=false&quiet=false`);
  t.equal(push.status, 200);
  const streamed = jsonLines(push.text);
  t.same(streamed[0], { stream: 'Getting image source signatures\n' });
  t.ok(streamed.some((l) => String(l.stream).startsWith('Copying blob sha256:')), 'blob lines');
  t.same(streamed[streamed.length - 1], { stream: 'Storing signatures\n' });
  t.notOk(streamed.some((l) => 'error' in l), 'no error');
  const pushed = await registryDigest(reg, 'busybox', 'latest');
  t.ok(pushed, 'the registry has busybox:latest');

  await removeAll(d);
  const report = await quietPull(d, `${reg.host}/busybox`);
  t.same(report, { images: [BUSYBOX_ID()], id: BUSYBOX_ID() }, 'pulled back under the same ID');
  const img = await inspect(d, `${reg.host}/busybox`);
  t.equal(img.Id, BUSYBOX_ID());
  t.equal(img.Digest, pushed, 'image digest = pushed manifest digest');
  t.same(img.RepoTags, [`${reg.host}/busybox:latest`]);
  t.same(img.RepoDigests, [`${reg.host}/busybox@${pushed}`]);

  // Pushing the pulled image elsewhere keeps its manifest byte for byte (nothing to convert).
  const again = await d.request('POST', `/v4.3.1/libpod/images/${reg.host}%2Fbusybox/push?destination=${reg.host}/copy:1&tlsVerify=false`);
  t.equal(again.status, 200);
  t.equal(again.text, '\n', 'quiet push (the default) answers an empty line');
  t.equal(await registryDigest(reg, 'copy', '1'), pushed, 'same manifest digest');

  // Events: push and pull were recorded.
  const events = await d.request('GET', '/v4.3.1/libpod/events?stream=false&filters=%7B%22type%22%3A%5B%22image%22%5D%7D');
  const statuses = jsonLines(events.text).map((e) => e.status);
  t.ok(statuses.includes('push') && statuses.includes('pull'), `push and pull events (${statuses.join(',')})`);

  // Run a container from the pulled image: the layers really are there.
  const out = await execa('podman', ['--url', `unix://${d.socket}`, 'run', '--rm', `${reg.host}/busybox`, 'cat', '/etc/passwd'], { timeout: 60_000, reject: false });
  t.match(out.stdout, /root:/, 'a container runs from the pulled image');
});

t.test('podman-remote pull and push --tls-verify=false', async (t) => {
  await removeAll(d);
  const podman = (...args: string[]) => execa('podman', ['--url', `unix://${d.socket}`, ...args], { timeout: 60_000, reject: false });
  const pull = await podman('pull', '--tls-verify=false', `${reg.host}/busybox`);
  t.equal(pull.exitCode, 0, pull.stderr);
  t.equal(pull.stdout.trim(), BUSYBOX_ID(), 'podman prints the ID');
  t.match(pull.stderr, `Trying to pull ${reg.host}/busybox:latest...`);
  const push = await podman('push', '--tls-verify=false', `${reg.host}/busybox`, `${reg.host}/viapodman:2`);
  t.equal(push.exitCode, 0, push.stderr);
  t.match(push.stderr, /Writing manifest to image destination/);
  t.ok(await registryDigest(reg, 'viapodman', '2'), 'pushed by podman-remote');
  const missing = await podman('push', '--tls-verify=false', 'localhost/never-there', `${reg.host}/x:1`);
  t.not(missing.exitCode, 0);
  t.match(missing.stderr, /image not known/);
});

t.test('docker CLI pull and push through the compat API', async (t) => {
  await removeAll(d);
  const docker = (...args: string[]) => execa('docker', ['-H', `unix://${d.socket}`, ...args], { timeout: 60_000, reject: false });
  const pull = await docker('pull', `${reg.host}/busybox`);
  t.equal(pull.exitCode, 0, pull.stderr);
  t.match(pull.stdout, /Download complete/);
  t.equal((await inspect(d, `${reg.host}/busybox`)).Id, BUSYBOX_ID());

  // The raw stream: Docker JSON messages, the last one naming the image.
  const raw = await d.request('POST', `/v1.41/images/create?fromImage=${reg.host}/busybox&tag=latest`);
  const messages = jsonLines(raw.text);
  t.same(messages[messages.length - 1], { status: 'Download complete', progressDetail: {}, id: BUSYBOX_ID().slice(0, 12) });
  t.ok(messages.some((m) => m.status === 'Already exists'), 'the layer is already there');

  t.equal((await docker('tag', `${reg.host}/busybox`, `${reg.host}/fromdocker:x`)).exitCode, 0);
  const push = await docker('push', `${reg.host}/fromdocker:x`);
  t.equal(push.exitCode, 0, push.stderr);
  const digest = await registryDigest(reg, 'fromdocker', 'x');
  t.ok(digest);
  t.match(push.stdout, `x: digest: ${digest}`);

  const rawPush = await d.request('POST', `/v1.41/images/${reg.host}/fromdocker/push?tag=x`);
  const pushMessages = jsonLines(rawPush.text);
  t.same(pushMessages[0], { status: `The push refers to repository [${reg.host}/fromdocker:x]` });
  t.ok(pushMessages.some((m) => m.status === 'Layer already exists'));
  const unknown = jsonLines((await d.request('POST', `/v1.41/images/${reg.host}/not-here/push?tag=1`)).text);
  t.same(unknown[unknown.length - 1], {
    errorDetail: { message: `An image does not exist locally with the tag: ${reg.host}/not-here:1` },
    error: `An image does not exist locally with the tag: ${reg.host}/not-here:1`,
  });
});

t.test('manifest formats, pulls by digest and of every tag', async (t) => {
  await removeAll(d);
  await loadBusybox(d.socket);
  const accept = { Accept: 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json' };
  for (const [format, type] of [
    ['oci', 'application/vnd.oci.image.manifest.v1+json'],
    ['v2s2', 'application/vnd.docker.distribution.manifest.v2+json'],
  ] as const) {
    const res = await d.request('POST', `/v4.3.1/libpod/images/localhost%2Fbusybox/push?destination=${reg.host}/formats:${format}&tlsVerify=false&format=${format}`);
    t.equal(res.status, 200, res.text);
    const manifest = await fetch(`${reg.url}/v2/formats/manifests/${format}`, { headers: accept });
    t.equal(manifest.headers.get('content-type'), type, `format=${format} pushes ${type}`);
    const body = (await manifest.json()) as { config: { digest: string; mediaType: string }; layers: Array<{ mediaType: string }> };
    t.equal(body.config.digest, `sha256:${BUSYBOX_ID()}`, 'same config, so the same image ID');
    t.match(body.layers[0]!.mediaType, /gzip/, 'layers are compressed for the registry');
  }
  const v1 = await d.request('POST', `/v4.3.1/libpod/images/localhost%2Fbusybox/push?destination=${reg.host}/formats:v1&tlsVerify=false&format=v2s1`);
  t.equal(v1.status, 400, 'schema 1 is refused');
  t.match(v1.json().message, /v2s1/);

  // By digest: the image is found under that digest afterwards.
  const digest = (await registryDigest(reg, 'formats', 'oci'))!;
  await removeAll(d);
  const byDigest = await quietPull(d, `${reg.host}/formats@${digest}`);
  t.same(byDigest.images, [BUSYBOX_ID()]);
  t.equal((await inspect(d, `${reg.host}/formats@${digest}`)).Id, BUSYBOX_ID());
  const wrongDigest = await quietPull(d, `${reg.host}/formats@sha256:${'0'.repeat(64)}`);
  t.match(String(wrongDigest.error), /manifest unknown/);

  // allTags: every tag of the repository, one image (they are all busybox).
  const all = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${reg.host}/formats&tlsVerify=false&allTags=true`);
  const report = jsonLines(all.text);
  t.same(report[report.length - 1], { images: [BUSYBOX_ID(), BUSYBOX_ID()], id: BUSYBOX_ID() });
  t.same((await inspect(d, BUSYBOX_ID())).RepoTags.sort(), [`${reg.host}/formats:oci`, `${reg.host}/formats:v2s2`]);
});

t.test('a manifest list resolves to linux/amd64, or to the platform asked for', async (t) => {
  await removeAll(d);
  // Reuse busybox's blobs: an arm64 twin differs only in its config.
  const amd64Manifest = await fetch(`${reg.url}/v2/busybox/manifests/latest`, { headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
  const amd64Bytes = Buffer.from(await amd64Manifest.arrayBuffer());
  const amd64 = JSON.parse(amd64Bytes.toString()) as { layers: Array<{ digest: string; size: number }>; config: { digest: string } };
  const busyboxConfig = JSON.parse(Buffer.from(await (await fetch(`${reg.url}/v2/busybox/blobs/${amd64.config.digest}`)).arrayBuffer()).toString());
  const armConfig = Buffer.from(JSON.stringify({ ...busyboxConfig, architecture: 'arm64', variant: 'v8' }));
  // Same repository for every blob and manifest the index points at.
  await uploadBlob(reg, 'multi', Buffer.from(await (await fetch(`${reg.url}/v2/busybox/blobs/${amd64.layers[0]!.digest}`)).arrayBuffer()));
  await uploadBlob(reg, 'multi', Buffer.from(JSON.stringify(busyboxConfig)));
  const armConfigDigest = await uploadBlob(reg, 'multi', armConfig);
  const amd64Digest = await putManifest(reg, 'multi', sha256(amd64Bytes), JSON.parse(amd64Bytes.toString()), 'application/vnd.docker.distribution.manifest.v2+json');
  const armDigest = await putManifest(
    reg,
    'multi',
    'arm',
    {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: armConfigDigest, size: armConfig.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: amd64.layers[0]!.digest, size: amd64.layers[0]!.size }],
    },
    'application/vnd.oci.image.manifest.v1+json',
  );
  const armBytes = await (await fetch(`${reg.url}/v2/multi/manifests/arm`, { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } })).arrayBuffer();
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [
      { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: armDigest, size: armBytes.byteLength, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } },
      { mediaType: 'application/vnd.docker.distribution.manifest.v2+json', digest: amd64Digest, size: amd64Bytes.length, platform: { architecture: 'amd64', os: 'linux' } },
    ],
  };
  const indexDigest = await putManifest(reg, 'multi', 'latest', index, 'application/vnd.oci.image.index.v1+json');

  const report = await quietPull(d, `${reg.host}/multi`);
  t.same(report.images, [BUSYBOX_ID()], 'linux/amd64 chosen');
  const img = await inspect(d, `${reg.host}/multi`);
  t.equal(img.Digest, amd64Digest, "the image's digest is its own manifest's");
  t.ok(img.RepoDigests.includes(`${reg.host}/multi@${indexDigest}`), 'the index digest is among the repo digests');

  const arm = await quietPull(d, `${reg.host}/multi`, '&Arch=arm64');
  t.same(arm.images, [sha256(armConfig).slice('sha256:'.length)], 'Arch=arm64 chooses the arm64 image');
  const none = await quietPull(d, `${reg.host}/multi`, '&Arch=s390x');
  t.match(String(none.error), /no image found in image index for architecture s390x, variant "", OS linux/);

  // The docker CLI's platform option reaches the same choice.
  const docker = await execa('docker', ['-H', `unix://${d.socket}`, 'pull', '--platform', 'linux/arm64', `${reg.host}/multi`], { timeout: 60_000, reject: false });
  t.equal(docker.exitCode, 0, docker.stderr);
});

t.test('a corrupted blob is an error and leaves the store as it was', async (t) => {
  await removeAll(d);
  await loadBusybox(d.socket);
  const small = await uploadSmallImage(reg, 'small', 'latest', 'hello from a small image\n'.repeat(2000));
  // Overwrite the layer's data in the registry's storage, keeping its size.
  const hex = small.layerDigest.slice('sha256:'.length);
  const file = join(reg.dataDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
  const original = await readFile(file);
  const corrupt = Buffer.from(original);
  for (let i = 100; i < corrupt.length - 100; i += 97) corrupt[i]! ^= 0x5a;
  await writeFile(file, corrupt);
  const storeRoot = join(d.root, 'images');
  const before = await listTree(storeRoot);

  const report = await quietPull(d, `${reg.host}/small`);
  t.match(String(report.error), `Digest did not match, expected ${small.layerDigest}, got ${sha256(corrupt)}`);
  t.notOk(report.images, 'no image reported');
  t.same(await listTree(storeRoot), before, 'the store is exactly as it was');
  t.same(await readdir(join(storeRoot, 'tmp')), [], 'no staging left behind');

  // Truncated: the same.
  await writeFile(file, original.subarray(0, original.length - 1000));
  const truncated = await quietPull(d, `${reg.host}/small`);
  t.match(String(truncated.error), /Digest did not match|bytes/);
  t.same(await listTree(storeRoot), before);

  // Repaired: the pull works and the content is the layer's.
  await writeFile(file, original);
  t.same((await quietPull(d, `${reg.host}/small`)).images, [small.id]);
});

t.test('unknown images: clear errors from every entry point', async (t) => {
  const report = await quietPull(d, `${reg.host}/nope`);
  t.equal(report.error, `initializing source docker://${reg.host}/nope:latest: reading manifest latest in ${reg.host}/nope: manifest unknown: manifest unknown`);
  const tag = await quietPull(d, `${reg.host}/busybox:missing-tag`);
  t.match(String(tag.error), 'reading manifest missing-tag');
  const short = await quietPull(d, 'just-a-short-name');
  t.match(String(short.error), /short-name "just-a-short-name" did not resolve to an alias and no unqualified-search registries are defined/);
  const closed = await quietPull(d, `127.0.0.1:${await freePort()}/x`);
  t.match(String(closed.error), /pinging container registry 127\.0\.0\.1:\d+: .*connection refused/);
  // tlsVerify=true: https only, and the registry speaks plain http.
  const tls = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${reg.host}/busybox&tlsVerify=true&quiet=true&policy=always`);
  t.match(jsonLines(tls.text)[0]!.error, 'http: server gave HTTP response to HTTPS client');

  const podman = await execa('podman', ['--url', `unix://${d.socket}`, 'pull', '--tls-verify=false', `${reg.host}/nope`], { reject: false, timeout: 60_000 });
  t.equal(podman.exitCode, 125);
  t.match(podman.stderr, 'manifest unknown');
  const compat = jsonLines((await d.request('POST', `/v1.41/images/create?fromImage=${reg.host}/nope&tag=latest`)).text);
  t.match(compat[compat.length - 1], { progressDetail: {}, errorDetail: { message: /manifest unknown/ }, error: /manifest unknown/ });
  const bad = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${reg.host}/busybox`, undefined, { 'X-Registry-Auth': 'not base64 json!' });
  t.equal(bad.status, 400, 'a malformed X-Registry-Auth is a 400');
});

/**
 * A registry front that demands authentication: `bearer` issues tokens at /token to user:secret and
 * forwards only requests that carry one; `basic` forwards requests that carry user:secret.
 */
async function authProxy(
  tt: { teardown: (fn: () => unknown) => void },
  mode: 'bearer' | 'basic',
): Promise<{ host: string; scopes: string[] }> {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const basic = `Basic ${Buffer.from('user:secret').toString('base64')}`;
  const token = 'tok-123';
  const scopes: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${host}`);
    if (mode === 'bearer' && url.pathname === '/token') {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'Content-Type': 'application/json' }).end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      scopes.push(...url.searchParams.getAll('scope'));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const allowed = mode === 'bearer' ? req.headers.authorization === `Bearer ${token}` : req.headers.authorization === basic;
    if (!allowed) {
      const challenge = mode === 'bearer' ? `Bearer realm="http://${host}/token",service="test-registry"` : 'Basic realm="test-registry"';
      res.writeHead(401, { 'WWW-Authenticate': challenge, 'Content-Type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    const upstream = httpRequest({ host: '127.0.0.1', port: reg.port, method: req.method, path: req.url, headers }, (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  tt.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { host, scopes };
}

const authHeader = (user: string, password: string): Record<string, string> => ({
  'X-Registry-Auth': Buffer.from(JSON.stringify({ username: user, password })).toString('base64url'),
});

t.test('bearer token authentication with credentials from X-Registry-Auth', async (t) => {
  const proxy = await authProxy(t, 'bearer');
  await removeAll(d);
  await loadBusybox(d.socket);
  const denied = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${proxy.host}/busybox&quiet=true&tlsVerify=false`);
  t.match(jsonLines(denied.text)[0]!.error, /unable to retrieve auth token: invalid username\/password/);

  const push = await d.request(
    'POST',
    `/v4.3.1/libpod/images/localhost%2Fbusybox/push?destination=${proxy.host}/authed:1&tlsVerify=false&quiet=true`,
    undefined,
    authHeader('user', 'secret'),
  );
  t.equal(push.status, 200, push.text);
  t.ok(proxy.scopes.includes('repository:authed:pull,push'), `push asked for a push token (${proxy.scopes.join(' ')})`);
  await removeAll(d);
  const pulled = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${proxy.host}/authed:1&quiet=true&tlsVerify=false`, undefined, authHeader('user', 'secret'));
  t.same(jsonLines(pulled.text)[0]!.images, [BUSYBOX_ID()]);
  t.ok(proxy.scopes.includes('repository:authed:pull'));

  // podman-remote sends its credentials the same way.
  const podman = await execa(
    'podman',
    ['--url', `unix://${d.socket}`, 'pull', '--tls-verify=false', '--creds', 'user:secret', `${proxy.host}/authed:1`],
    { reject: false, timeout: 60_000 },
  );
  t.equal(podman.exitCode, 0, podman.stderr);
});

t.test('Basic authentication', async (t) => {
  const proxy = await authProxy(t, 'basic');
  await removeAll(d);
  const denied = await quietPull(d, `${proxy.host}/busybox`);
  t.match(String(denied.error), /unauthorized: authentication required/);
  const wrong = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${proxy.host}/busybox&quiet=true&tlsVerify=false`, undefined, authHeader('user', 'nope'));
  t.match(jsonLines(wrong.text)[0]!.error, /unauthorized/);
  // Docker's multi-registry form, keyed by registry.
  const byRegistry = { 'X-Registry-Auth': Buffer.from(JSON.stringify({ [proxy.host]: { username: 'user', password: 'secret' } })).toString('base64url') };
  const ok = await d.request('POST', `/v4.3.1/libpod/images/pull?reference=${proxy.host}/busybox&quiet=true&tlsVerify=false`, undefined, byRegistry);
  t.same(jsonLines(ok.text)[0]!.images, [BUSYBOX_ID()]);
});
