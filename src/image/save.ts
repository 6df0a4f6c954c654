/**
 * Writing images as tar archives, streamed: docker-archive (manifest.json, repositories, config,
 * one uncompressed tar per layer plus the legacy per-layer directories `docker save` writes) and
 * oci-archive (oci-layout, index.json, blobs/sha256/…). Blobs are read from the store as they are
 * written out; nothing is buffered beyond a chunk.
 */
import { createReadStream } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import { digestHex, sha256Digest } from './digest.js';
import { AnnotationRefName, MediaType, type Descriptor, type DockerArchiveItem, type OciIndex, type OciManifest } from './types.js';

export interface SaveLayer {
  diffId: string;
  /** Uncompressed size. */
  size: number;
  blobPath: string;
  blobDigest: string;
  blobSize: number;
  compression: 'gzip' | 'none';
}

export interface SaveImage {
  id: string;
  configPath: string;
  configSize: number;
  layers: SaveLayer[];
  /** `repo:tag` names to record in the archive. */
  tags: string[];
  /** The stored OCI manifest, when its layer blobs are exactly the stored ones (written back verbatim). */
  ociManifest?: { path: string; digest: string; size: number; mediaType: string };
}

const epoch = new Date(0);

type Pack = ReturnType<typeof tar.pack>;

/** Entry sinks report failures through their callback; an 'error' event must not go unheard. */
function quiet<T extends { on(event: 'error', fn: (err: Error) => void): unknown }>(sink: T): T {
  sink.on('error', () => undefined);
  return sink;
}

function addBuffer(pack: Pack, name: string, data: Buffer | string): Promise<void> {
  return new Promise((resolve, reject) => {
    quiet(
      pack.entry({ name, mode: 0o444, mtime: epoch, uid: 0, gid: 0 }, typeof data === 'string' ? Buffer.from(data) : data, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  });
}

function addDirectory(pack: Pack, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    quiet(pack.entry({ name, type: 'directory', mode: 0o755, mtime: epoch, uid: 0, gid: 0 }, (err) => (err ? reject(err) : resolve())));
  });
}

function addSymlink(pack: Pack, name: string, target: string): Promise<void> {
  return new Promise((resolve, reject) => {
    quiet(
      pack.entry({ name, type: 'symlink', linkname: target, mode: 0o777, mtime: epoch, uid: 0, gid: 0 }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  });
}

/** Streams `source` (exactly `size` bytes) into the archive as `name`. */
async function addStream(pack: Pack, name: string, size: number, source: Readable): Promise<void> {
  let settle!: (err?: Error | null) => void;
  const entryDone = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  entryDone.catch(() => undefined); // may reject while we wait for 'drain'; awaited below
  const sink = quiet(pack.entry({ name, size, mode: 0o444, mtime: epoch, uid: 0, gid: 0 }, (err) => settle(err)));
  // Wakes on 'drain', and also when the entry or the archive closes, so a reader that went away
  // (client disconnect) cannot leave us waiting forever.
  const writable = (): Promise<void> =>
    new Promise((resolve) => {
      const events = sink as unknown as NodeJS.EventEmitter;
      const archive = pack as unknown as NodeJS.EventEmitter;
      const wake = (): void => {
        events.off('drain', wake);
        events.off('close', wake);
        archive.off('close', wake);
        resolve();
      };
      events.on('drain', wake);
      events.on('close', wake);
      archive.on('close', wake);
    });
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (sink.destroyed || pack.destroyed) throw new Error(`archive closed while writing ${name}`);
      if (!sink.write(chunk)) await writable();
    }
    (sink as unknown as { end(): void }).end();
  } catch (err) {
    source.destroy();
    sink.destroy(err as Error);
    await entryDone.catch(() => undefined);
    throw err;
  }
  await entryDone;
}

function layerSource(layer: SaveLayer, uncompressed: boolean): Readable {
  const raw = createReadStream(layer.blobPath);
  if (!uncompressed || layer.compression === 'none') return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  return raw.pipe(gunzip);
}

/** Runs `write` against a tar pack that is streamed into `out`; settles when `out` has everything. */
async function withPack(out: Writable, write: (pack: Pack) => Promise<void>): Promise<void> {
  const pack = tar.pack();
  const piping = pipeline(pack as unknown as Readable, out);
  piping.catch(() => undefined); // observed below; avoids an unhandled rejection while `write` runs
  try {
    await write(pack);
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await piping.catch(() => undefined);
    throw err;
  }
  await piping;
}

/** Go's json.Marshal of a map sorts its keys; the legacy layer JSON is written the same way. */
function sortedJson(value: Record<string, unknown>): string {
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = value[key];
  return JSON.stringify(sorted);
}

export async function writeDockerArchive(images: readonly SaveImage[], readConfig: (img: SaveImage) => Promise<Buffer>, out: Writable): Promise<void> {
  await withPack(out, async (pack) => {
    const written = new Set<string>();
    const manifest: DockerArchiveItem[] = [];
    const repositories: Record<string, Record<string, string>> = {};
    for (const image of images) {
      for (const layer of image.layers) {
        const name = `${digestHex(layer.diffId)}.tar`;
        if (written.has(name)) continue;
        written.add(name);
        await addStream(pack, name, layer.size, layerSource(layer, true));
      }
      const configBytes = await readConfig(image);
      const configName = `${image.id}.json`;
      if (!written.has(configName)) {
        written.add(configName);
        await addBuffer(pack, configName, configBytes);
      }
      // Legacy (pre-1.10) layout: one directory per layer with a link to the layer tar.
      const config = JSON.parse(configBytes.toString('utf8')) as Record<string, unknown>;
      let chainId = '';
      let parentId = '';
      for (const [i, layer] of image.layers.entries()) {
        const legacy: Record<string, unknown> = {};
        if (parentId) legacy.parent = parentId;
        if (i === image.layers.length - 1) {
          for (const key of ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os']) {
            legacy[key] = config[key] ?? null;
          }
        }
        chainId = chainId === '' ? layer.diffId : sha256Digest(`${chainId} ${layer.diffId}`);
        const legacyId = digestHex(sha256Digest(sortedJson({ ...legacy, layer_id: chainId })));
        legacy.id = legacyId;
        if (!written.has(legacyId)) {
          written.add(legacyId);
          await addSymlink(pack, `${legacyId}/layer.tar`, `../${digestHex(layer.diffId)}.tar`);
          await addBuffer(pack, `${legacyId}/VERSION`, '1.0');
          await addBuffer(pack, `${legacyId}/json`, sortedJson(legacy));
        }
        parentId = legacyId;
      }
      if (parentId) {
        for (const t of image.tags) {
          const colon = t.lastIndexOf(':');
          const repo = t.slice(0, colon);
          (repositories[repo] ??= {})[t.slice(colon + 1)] = parentId;
        }
      }
      const existing = manifest.find((m) => m.Config === configName);
      if (existing) {
        for (const t of image.tags) if (!existing.RepoTags!.includes(t)) existing.RepoTags!.push(t);
      } else {
        manifest.push({ Config: configName, RepoTags: [...new Set(image.tags)], Layers: image.layers.map((l) => `${digestHex(l.diffId)}.tar`) });
      }
    }
    await addBuffer(pack, 'manifest.json', JSON.stringify(manifest));
    await addBuffer(pack, 'repositories', JSON.stringify(repositories));
  });
}

export async function writeOciArchive(image: SaveImage, readFileBytes: (path: string) => Promise<Buffer>, out: Writable): Promise<void> {
  await withPack(out, async (pack) => {
    await addBuffer(pack, 'oci-layout', JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    await addDirectory(pack, 'blobs/');
    await addDirectory(pack, 'blobs/sha256/');
    const written = new Set<string>();
    for (const layer of image.layers) {
      if (written.has(layer.blobDigest)) continue;
      written.add(layer.blobDigest);
      await addStream(pack, `blobs/sha256/${digestHex(layer.blobDigest)}`, layer.blobSize, layerSource(layer, false));
    }
    const configDigest = `sha256:${image.id}`;
    await addBuffer(pack, `blobs/sha256/${image.id}`, await readFileBytes(image.configPath));
    let manifestBytes: Buffer;
    let manifestDigest: string;
    let manifestType: string = MediaType.ociManifest;
    if (image.ociManifest) {
      manifestBytes = await readFileBytes(image.ociManifest.path);
      manifestDigest = image.ociManifest.digest;
      manifestType = image.ociManifest.mediaType;
    } else {
      const m: OciManifest = {
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: configDigest, size: image.configSize },
        layers: image.layers.map(
          (l): Descriptor => ({
            mediaType: l.compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer,
            digest: l.blobDigest,
            size: l.blobSize,
          }),
        ),
      };
      manifestBytes = Buffer.from(JSON.stringify(m));
      manifestDigest = sha256Digest(manifestBytes);
    }
    if (!written.has(manifestDigest) && manifestDigest !== configDigest) {
      await addBuffer(pack, `blobs/sha256/${digestHex(manifestDigest)}`, manifestBytes);
    }
    const descriptor: Descriptor = { mediaType: manifestType, digest: manifestDigest, size: manifestBytes.length };
    if (image.tags[0]) descriptor.annotations = { [AnnotationRefName]: image.tags[0] };
    const index: OciIndex = { schemaVersion: 2, manifests: [descriptor] };
    await addBuffer(pack, 'index.json', JSON.stringify(index));
  });
}
