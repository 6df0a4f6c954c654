import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { toDockerImageInspect, toDockerListEntry, toHistoryResponse, toLibpodImageData, toLibpodListEntry } from '../../../src/image/inspect.js';
import { cleanupPodman, fixtures, tempDir, tempStore } from './helpers.js';

const fx = await fixtures();

function get(socketPath: string, path: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err as Error);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Drops the store-specific paths, which necessarily differ. */
function withoutPaths<T>(value: T): T {
  const copy = structuredClone(value) as Record<string, unknown>;
  if (copy.GraphDriver) (copy.GraphDriver as { Data: unknown }).Data = '<paths>';
  return copy as T;
}

t.test('inspect, list and history bodies equal those of podman system service', async (t) => {
  // The reference: podman's own API service on a private store holding the same image.
  const dir = await tempDir(t, 'psvc-');
  const base = ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay'];
  await execa('podman', [...base, 'load', '-q', '-i', fx.dockerTar]);
  await execa('podman', [...base, 'tag', 'localhost/busybox:latest', 'quay.io/foo/bar:1.0']);
  const socket = join(dir, 'p.sock');
  const service = execa('podman', [...base, 'system', 'service', '--time=0', `unix://${socket}`], { reject: false });
  t.teardown(async () => {
    service.kill('SIGTERM');
    await service;
    await cleanupPodman(dir);
  });
  for (let i = 0; i < 100; i++) {
    if (await access(socket).then(() => true, () => false)) break;
    await new Promise((r) => setTimeout(r, 50));
  }

  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  await store.tag('busybox', 'quay.io/foo/bar', '1.0');
  const details = store.details('busybox');

  const pairs: Array<[string, unknown, string]> = [
    ['libpod inspect', toLibpodImageData(details), '/v4.3.1/libpod/images/busybox/json'],
    ['docker inspect', toDockerImageInspect(details), '/v1.41/images/busybox/json'],
    ['libpod list', [toLibpodListEntry(details)], '/v4.3.1/libpod/images/json'],
    ['docker list', [toDockerListEntry(details)], '/v1.41/images/json'],
    ['libpod history', toHistoryResponse(store.history('busybox')), '/v4.3.1/libpod/images/busybox/history'],
    ['docker history', toHistoryResponse(store.history('busybox')), '/v1.41/images/busybox/history'],
  ];
  for (const [what, ours, path] of pairs) {
    const theirs = await get(socket, path);
    const norm = (v: unknown): unknown => (Array.isArray(v) ? v.map(withoutPaths) : withoutPaths(v));
    t.same(norm(ours), norm(theirs), what);
    t.equal(JSON.stringify(norm(ours)), JSON.stringify(norm(theirs)), `${what}: same keys in the same order`);
  }
});
