import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import t from 'tap';
import { toDockerImageInspect } from '../../../src/image/inspect.js';
import { bufferStream, cleanupPodman, fixtures, podman, tempDir, tempStore } from './helpers.js';

const fx = await fixtures();

const changes = [
  'CMD ["/bin/sh", "-c", "echo hi"]',
  'ENTRYPOINT ["/bin/busybox"]',
  'ENV GREETING=hello',
  'LABEL org.example.kind=test',
  'EXPOSE 8080',
  'EXPOSE 53/udp',
  'WORKDIR /srv',
  'USER nobody',
  'STOPSIGNAL TERM',
  'VOLUME /data',
];

t.test('import with changes: the same config and layer as podman import', async (t) => {
  const { store } = await tempStore(t);
  const record = await store.importRootfs(createReadStream(fx.rootfsTar), { reference: 'imported', changes, message: 'made by a test' });
  t.same(record.names, ['localhost/imported:latest']);
  t.same(record.layers, [fx.diffId], 'the tarball itself is the layer');
  t.equal(record.manifestType, 'application/vnd.oci.image.manifest.v1+json');
  t.equal(store.resolve('imported').id, record.id);

  const p = await tempDir(t, 'ppod-');
  t.teardown(() => cleanupPodman(p));
  const args = ['import', '-q', '--message', 'made by a test'];
  for (const c of changes) args.push('--change', c);
  await podman(p, [...args, fx.rootfsTar, 'imported']);
  const theirs = (JSON.parse(String((await podman(p, ['image', 'inspect', 'imported'])).stdout)) as Array<Record<string, unknown>>)[0]!;
  const ours = store.inspect('imported');
  for (const key of ['Config', 'RootFS', 'Labels', 'User', 'RepoTags', 'ManifestType', 'Comment', 'Architecture', 'Os']) {
    t.same(ours[key], theirs[key], key);
  }
  // Sizes differ only by the length of the creation time, written twice in the config.
  const createdLength = (v: unknown): number => String(v).length;
  t.equal(ours.Size, (theirs.Size as number) + 2 * (createdLength(ours.Created) - createdLength(theirs.Created)), 'Size');
  t.match(ours.Created, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
  const [oursHistory] = ours.History as Array<Record<string, unknown>>;
  const [theirHistory] = theirs.History as Array<Record<string, unknown>>;
  t.equal(oursHistory!.created_by, theirHistory!.created_by);
  t.equal(oursHistory!.comment, 'made by a test');

  const docker = toDockerImageInspect(store.details('imported'));
  const config = docker.Config as Record<string, unknown>;
  t.same(config.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  t.equal(config.StopSignal, '15');
  t.same(config.Cmd, ['/bin/sh', '-c', 'echo hi']);
  t.same(config.Labels, { 'org.example.kind': 'test' });
  t.equal((docker.ContainerConfig as Record<string, unknown>).Hostname, record.id.slice(0, 11));
});

t.test('gzip tarball: same layer, blob kept compressed; plain import reuses the layer', async (t) => {
  const { store } = await tempStore(t);
  const gz = gzipSync(await readFile(fx.rootfsTar));
  const a = await store.importRootfs(bufferStream(gz), { created: '2024-01-01T00:00:00Z' });
  t.same(a.layers, [fx.diffId]);
  t.same(a.names, [], 'no reference: no name');
  const b = await store.importRootfs(createReadStream(fx.rootfsTar), { created: '2024-01-01T00:00:01Z' });
  t.not(a.id, b.id);
  t.equal(store.info().layerCount, 1, 'the second import shares the layer');
  t.equal(store.size(a.id), store.size(b.id) - b.manifestSize * 2 + a.manifestSize * 2);
  t.equal(a.config.created, '2024-01-01T00:00:00Z');
  t.equal(a.config.architecture, 'amd64');
  t.equal(a.config.os, 'linux');
});
