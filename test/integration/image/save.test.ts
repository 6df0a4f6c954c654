import { createReadStream, createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import t from 'tap';
import tar from 'tar-stream';
import { bufferStream, cleanupPodman, dockerArchive, fixtures, makeTar, podman, tempDir, tempStore } from './helpers.js';

const fx = await fixtures();

/** Members of a tar archive: name → content (small archives only). */
async function members(archive: Buffer): Promise<Map<string, { type: string; body: Buffer; linkname: string | null }>> {
  const out = new Map<string, { type: string; body: Buffer; linkname: string | null }>();
  const extract = tar.extract();
  extract.on('entry', (header, stream, next) => {
    const parts: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      parts.push(c as Buffer);
    });
    stream.on('end', () => {
      out.set(header.name, { type: header.type, body: Buffer.concat(parts), linkname: header.linkname });
      next();
    });
  });
  await new Promise<void>((res, rej) => {
    extract.on('finish', () => res());
    extract.on('error', rej);
    extract.end(archive);
  });
  return out;
}

async function saveToBuffer(save: (out: PassThrough) => Promise<void>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const ended = new Promise((r) => out.on('end', r));
  await save(out);
  await ended;
  return Buffer.concat(chunks);
}

t.test('docker-archive: layout, round trip, and podman loads it', async (t) => {
  const { store, dir } = await tempStore(t);
  await store.load(createReadStream(fx.ociTarGz));
  const archive = await saveToBuffer((out) => store.save(['busybox'], 'docker-archive', out));
  const m = await members(archive);
  const manifest = JSON.parse(m.get('manifest.json')!.body.toString()) as Array<{ Config: string; RepoTags: string[]; Layers: string[] }>;
  const layerName = `${fx.diffId.slice(7)}.tar`;
  t.same(manifest, [{ Config: `${fx.id}.json`, RepoTags: ['localhost/busybox:latest'], Layers: [layerName] }]);
  t.same(m.get(layerName)!.body, await readFile(fx.rootfsTar), 'layer written uncompressed, byte for byte');
  const repositories = JSON.parse(m.get('repositories')!.body.toString()) as Record<string, Record<string, string>>;
  const legacyId = repositories['localhost/busybox']!.latest!;
  t.equal(m.get(`${legacyId}/layer.tar`)!.linkname, `../${layerName}`, 'legacy layer directory links to the layer');
  t.equal(m.get(`${legacyId}/VERSION`)!.body.toString(), '1.0');

  // Our own store loads it back to the same image.
  const { store: again } = await tempStore(t);
  t.same(await again.load(bufferStream(archive)), { names: ['localhost/busybox:latest'], ids: [fx.id] });

  // And so does podman.
  const file = join(dir, 'saved.tar');
  await pipeline(bufferStream(archive), createWriteStream(file));
  const p = await tempDir(t, 'ppod-');
  t.teardown(() => cleanupPodman(p));
  const loaded = await podman(p, ['load', '-i', file]);
  t.match(String(loaded.stdout), /Loaded image: localhost\/busybox:latest/);
  const ids = await podman(p, ['images', '--no-trunc', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']);
  t.equal(String(ids.stdout).trim(), `sha256:${fx.id} localhost/busybox:latest`);
});

t.test('oci-archive: the loaded manifest is written back verbatim; podman loads it', async (t) => {
  const { store, dir } = await tempStore(t);
  await store.load(createReadStream(fx.ociTar));
  const original = store.list()[0]!;
  const archive = await saveToBuffer((out) => store.save(['localhost/busybox'], 'oci-archive', out));
  const m = await members(archive);
  const index = JSON.parse(m.get('index.json')!.body.toString()) as { manifests: Array<{ digest: string; annotations?: Record<string, string> }> };
  t.equal(index.manifests[0]!.digest, original.manifestDigest, 'same manifest digest as the archive we loaded');
  t.same(index.manifests[0]!.annotations, { 'org.opencontainers.image.ref.name': 'localhost/busybox:latest' });
  t.same(JSON.parse(m.get('oci-layout')!.body.toString()), { imageLayoutVersion: '1.0.0' });

  const { store: again } = await tempStore(t);
  t.same(await again.load(bufferStream(archive)), { names: ['localhost/busybox:latest'], ids: [fx.id] });
  t.equal(again.list()[0]!.digest, original.manifestDigest);

  const file = join(dir, 'saved-oci.tar');
  await pipeline(bufferStream(archive), createWriteStream(file));
  const p = await tempDir(t, 'ppod-');
  t.teardown(() => cleanupPodman(p));
  await podman(p, ['load', '-i', file]);
  const digest = await podman(p, ['images', '--no-trunc', '--format', '{{.ID}} {{.Digest}}']);
  t.equal(String(digest.stdout).trim(), `sha256:${fx.id} ${original.manifestDigest}`);
});

t.test('oci-archive of an image that came as docker-archive: a new OCI manifest', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const archive = await saveToBuffer((out) => store.save([fx.id], 'oci-archive', out));
  const m = await members(archive);
  const index = JSON.parse(m.get('index.json')!.body.toString()) as { manifests: Array<{ digest: string; annotations?: unknown }> };
  t.notOk(index.manifests[0]!.annotations, 'saved by ID: no name recorded');
  const manifest = JSON.parse(m.get(`blobs/sha256/${index.manifests[0]!.digest.slice(7)}`)!.body.toString()) as {
    config: { digest: string };
    layers: Array<{ mediaType: string; digest: string }>;
  };
  t.equal(manifest.config.digest, `sha256:${fx.id}`);
  t.same(manifest.layers, [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: fx.diffId, size: (await readFile(fx.rootfsTar)).length }]);
  const { store: again } = await tempStore(t);
  t.same(await again.load(bufferStream(archive)), { names: [`sha256:${fx.id}`], ids: [fx.id] });
});

t.test('several images in one docker-archive; errors', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const other = await dockerArchive([await makeTar([{ name: 'f', data: 'x' }])], { repoTags: ['quay.io/o/other:2'] });
  await store.load(bufferStream(other.archive));
  await store.tag('busybox', 'alias');
  const archive = await saveToBuffer((out) => store.save(['busybox', 'quay.io/o/other:2', 'alias', 'busybox'], 'docker-archive', out));
  const manifest = JSON.parse((await members(archive)).get('manifest.json')!.body.toString()) as Array<{ Config: string; RepoTags: string[] }>;
  t.same(
    manifest.map((i) => [i.Config, i.RepoTags]),
    [
      [`${fx.id}.json`, ['localhost/busybox:latest', 'localhost/alias:latest']],
      [`${other.id}.json`, ['quay.io/o/other:2']],
    ],
  );
  const { store: again } = await tempStore(t);
  const result = await again.load(bufferStream(archive));
  t.same(result.ids, [fx.id, other.id]);
  t.same(result.names, ['localhost/busybox:latest', 'localhost/alias:latest', 'quay.io/o/other:2']);

  await t.rejects(store.save(['busybox', 'alias'], 'oci-archive', new PassThrough()), /only docker-archive/);
  await t.rejects(store.save(['nosuch'], 'docker-archive', new PassThrough()), { name: 'NotFoundError' });
  await t.rejects(store.save([], 'docker-archive', new PassThrough()), /no image specified/);
});

t.test('a reader that goes away ends the save with an error instead of hanging', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const out = new PassThrough({ highWaterMark: 1024 });
  const saving = store.save(['busybox'], 'docker-archive', out);
  out.once('data', () => out.destroy(new Error('client went away')));
  await t.rejects(saving);
  // Pins are released: the image can still be removed and its layer collected.
  await store.remove('busybox');
  t.equal(store.info().layerCount, 0);
});
