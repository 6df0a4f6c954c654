import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ImageStore } from '../../../src/image/store.js';
import { cleanupPodman, fixtures, listTree, podman, silentLogger, tempDir, tempStore } from './helpers.js';

const fx = await fixtures();

interface PodmanView {
  Id: string;
  Digest: string;
  RepoTags: string[];
  RepoDigests: string[];
  Size: number;
  ManifestType: string;
  Comment: string;
  Created: string;
  History: unknown[];
  RootFS: unknown;
  Config: unknown;
  Labels: unknown;
  Annotations: unknown;
  NamesHistory: string[];
}

/** What podman itself makes of an archive (private store, podman as a tool). */
async function podmanView(t: Parameters<typeof tempDir>[0], archive: string): Promise<PodmanView> {
  const dir = await tempDir(t, 'ppod-');
  t.teardown(() => cleanupPodman(dir));
  await podman(dir, ['load', '-q', '-i', archive]);
  const { stdout } = await podman(dir, ['image', 'inspect', 'localhost/busybox:latest']);
  return (JSON.parse(String(stdout)) as PodmanView[])[0]!;
}

// podman 4.3.1 itself refuses a gzip-compressed docker-archive, so that one is compared with
// podman's view of the same archive uncompressed.
for (const [label, file, reference] of [
  ['docker-archive', fx.dockerTar, fx.dockerTar],
  ['docker-archive.gz', fx.dockerTarGz, fx.dockerTar],
  ['oci-archive', fx.ociTar, fx.ociTar],
  ['oci-archive.gz', fx.ociTarGz, fx.ociTarGz],
] as const) {
  t.test(`load ${label}: names, id and inspect data equal podman's`, async (t) => {
    const { store } = await tempStore(t);
    const result = await store.load(createReadStream(file));
    t.same(result, { names: ['localhost/busybox:latest'], ids: [fx.id] });
    const ours = store.inspect('busybox');
    const theirs = await podmanView(t, reference);
    t.equal(ours.Id, theirs.Id, 'image ID');
    t.equal(ours.Id, fx.id);
    for (const key of ['Digest', 'RepoTags', 'RepoDigests', 'Size', 'ManifestType', 'Comment', 'Created', 'History', 'RootFS', 'Config', 'Labels', 'Annotations', 'NamesHistory'] as const) {
      t.same(ours[key], theirs[key], key);
    }
    const [record] = store.list();
    t.same(record!.layers, [fx.diffId]);
  });
}

t.test('loading every format of one image stores one image and one layer', async (t) => {
  const { store, root } = await tempStore(t);
  for (const f of [fx.dockerTar, fx.ociTar, fx.dockerTarGz, fx.ociTarGz]) await store.load(createReadStream(f));
  t.equal(store.list().length, 1);
  t.equal(store.info().layerCount, 1);
  const layers = (await listTree(root)).filter((l) => /^d layers\/[0-9a-f]{64} /.test(l));
  t.equal(layers.length, 1, 'one unpacked layer directory');
  const record = store.list()[0]!;
  t.equal(record.digests.length, 2, 'docker-archive and OCI manifests both remembered');
  t.equal(record.manifestType, 'application/vnd.oci.image.manifest.v1+json', 'last manifest is current');

  // The same sequence through podman gives the same Digest, RepoDigests and Size.
  const dir = await tempDir(t, 'ppod-');
  t.teardown(() => cleanupPodman(dir));
  await podman(dir, ['load', '-q', '-i', fx.dockerTar]);
  await podman(dir, ['load', '-q', '-i', fx.ociTar]);
  const theirs = (JSON.parse(String((await podman(dir, ['image', 'inspect', 'busybox'])).stdout)) as PodmanView[])[0]!;
  const ours = store.inspect('busybox');
  t.equal(ours.Digest, theirs.Digest);
  t.same(ours.RepoDigests, theirs.RepoDigests);
  t.equal(ours.Size, theirs.Size);
  t.equal(ours.ManifestType, theirs.ManifestType);
});

t.test('records survive reopening the store', async (t) => {
  const { store, root } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  await store.tag('busybox', 'quay.io/x/y', '1');
  const before = store.list();
  const reopened = await ImageStore.open(root, silentLogger());
  t.same(reopened.list(), before);
  t.equal(reopened.resolve('quay.io/x/y:1').id, fx.id);
  t.same(await listTree(join(root, 'tmp')), [], 'no staging left behind');
});

t.test('docker-archive with several tags, or none', async (t) => {
  const { store } = await tempStore(t);
  // Rewrite the fixture's manifest.json: tags as `docker save` writes them (short names).
  const tar = await import('tar-stream');
  const src = await readFile(fx.dockerTar);
  const rewrite = async (repoTags: string[] | null): Promise<Buffer> => {
    const extract = tar.extract();
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    const ended = new Promise<void>((r) => pack.on('end', () => r()));
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        parts.push(c as Buffer);
      });
      stream.on('end', () => {
        let body = Buffer.concat(parts);
        if (header.name === 'manifest.json') {
          const m = JSON.parse(body.toString()) as Array<{ RepoTags: unknown }>;
          m[0]!.RepoTags = repoTags;
          body = Buffer.from(JSON.stringify(m));
          header.size = body.length;
        }
        if (header.type === 'file') pack.entry(header, body, () => next());
        else pack.entry(header, () => next());
      });
    });
    extract.on('finish', () => pack.finalize());
    extract.end(src);
    await ended;
    return Buffer.concat(chunks);
  };
  const { bufferStream } = await import('./helpers.js');
  const multi = await store.load(bufferStream(await rewrite(['busybox:latest', 'foo/bar:1', 'quay.io/q/r:2'])));
  t.same(multi.names, ['localhost/busybox:latest', 'localhost/foo/bar:1', 'quay.io/q/r:2'], 'short names get localhost/ like podman');
  t.same(multi.ids, [fx.id]);
  t.same(store.list()[0]!.names, multi.names);

  const { store: store2 } = await tempStore(t);
  const untagged = await store2.load(bufferStream(await rewrite(null)));
  t.same(untagged.names, [`sha256:${fx.id}`], 'untagged image reported by ID');
  const [entry] = store2.listDetails();
  t.ok(entry!.dangling);
  t.same(entry!.record.names, []);
});

t.test('concurrent loads of the same image share one layer', async (t) => {
  const { store, root } = await tempStore(t);
  const results = await Promise.all([fx.dockerTar, fx.ociTar, fx.dockerTarGz, fx.ociTarGz].map((f) => store.load(createReadStream(f))));
  for (const r of results) t.same(r.ids, [fx.id]);
  t.equal(store.list().length, 1);
  t.equal(store.info().layerCount, 1);
  const tree = await listTree(root);
  t.equal(tree.filter((l) => /^d layers\/[0-9a-f]{64} /.test(l)).length, 1);
  t.same(tree.filter((l) => l.startsWith('d tmp/') || l.startsWith('f tmp/')), [], 'no staging left');
  // A removal racing a load of the same layer: the load still ends with a complete image.
  const [, loaded] = await Promise.all([store.remove('busybox'), store.load(createReadStream(fx.ociTar))]);
  t.same(loaded.ids, [fx.id]);
  const merged = await store.mountRootfs(fx.id, join(root, '..', 'ctr'));
  t.ok((await readFile(join(merged, 'etc/passwd'), 'utf8')).startsWith('root:'), 'layer present after the race');
  await store.unmountRootfs(join(root, '..', 'ctr'));
});

t.test('docker-archive with gzip-compressed layers', async (t) => {
  const { store } = await tempStore(t);
  const { makeTar, dockerArchive, bufferStream } = await import('./helpers.js');
  const layer = await makeTar([{ name: 'hello', data: 'world' }]);
  const image = await dockerArchive([layer], { gzipLayers: true, repoTags: ['localhost/gz:1'] });
  t.same(await store.load(bufferStream(image.archive)), { names: ['localhost/gz:1'], ids: [image.id] });
  t.equal(await readFile(join(store.layerDiffDir(image.diffIds[0]!), 'hello'), 'utf8'), 'world');
});

t.test('OCI layouts as other tools write them: containerd names, nested indexes, no name', async (t) => {
  const { makeTar, bufferStream, sha256 } = await import('./helpers.js');
  const layer = await makeTar([{ name: 'f', data: 'oci' }]);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [sha256(layer)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha256(layer), size: layer.length }],
      annotations: { 'org.example': 'yes' },
    }),
  );
  const descriptor = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256(manifest), size: manifest.length };
  const nested = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        { ...descriptor, digest: sha256('arm64 manifest we do not have'), platform: { architecture: 'arm64', os: 'linux' } },
        { ...descriptor, platform: { architecture: 'amd64', os: 'linux' } },
      ],
    }),
  );
  const layout = (index: unknown): Promise<Buffer> =>
    makeTar([
      { name: 'oci-layout', data: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', data: JSON.stringify(index) },
      { name: `blobs/sha256/${sha256(layer).slice(7)}`, data: layer },
      { name: `blobs/sha256/${sha256(config).slice(7)}`, data: config },
      { name: `blobs/sha256/${sha256(manifest).slice(7)}`, data: manifest },
      { name: `blobs/sha256/${sha256(nested).slice(7)}`, data: nested },
      { name: 'manifest.json', data: '[]' }, // Docker 25 writes both; the OCI layout wins, as in podman
    ]);
  const id = sha256(config).slice(7);

  const { store } = await tempStore(t);
  const containerd = await store.load(
    bufferStream(
      await layout({
        schemaVersion: 2,
        manifests: [{ ...descriptor, annotations: { 'io.containerd.image.name': 'docker.io/library/foo:1', 'org.opencontainers.image.ref.name': '1' } }],
      }),
    ),
  );
  t.same(containerd, { names: ['docker.io/library/foo:1'], ids: [id] });
  t.same(store.inspect('foo:1').Annotations, { 'org.example': 'yes' });

  const { store: s2 } = await tempStore(t);
  const multi = await s2.load(
    bufferStream(
      await layout({
        schemaVersion: 2,
        manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256(nested), size: nested.length, annotations: { 'org.opencontainers.image.ref.name': 'quay.io/m/p:2' } }],
      }),
    ),
  );
  t.same(multi.ids, [id], 'the manifest for this platform is picked from a nested index');

  const { store: s3 } = await tempStore(t);
  t.same(await s3.load(bufferStream(await layout({ schemaVersion: 2, manifests: [descriptor] }))), { names: [`sha256:${id}`], ids: [id] });
});
