/**
 * Pushing an image from the store to a registry, as `podman push` does: every layer the registry
 * lacks is uploaded (compressed with gzip first when the store holds it uncompressed, since
 * registries serve compressed layers), then the config, then the manifest under the tag.
 *
 * When the layers the registry ends up with are exactly those of the image's stored manifest, that
 * manifest is pushed byte for byte, so the pushed digest is the one the image was pulled with (what
 * containers/image does when nothing needs converting). Otherwise a manifest is written in the
 * requested format with Go's field order, as containers/image serialises it.
 */
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import { BadRequestError } from '../errors.js';
import { runLimited, withoutTransport, type TransferEvent } from './pull.js';
import { formatReference, parseNormalizedNamed, parseReference, repositoryName, tagNameOnly, type Reference } from './reference.js';
import { RegistryClient, RegistryError, credentialsFor, registryError, type RegistryAuth } from './registry.js';
import type { ImageStore, TransferSource } from './store.js';
import { MediaType, type OciManifest } from './types.js';

export interface PushOptions {
  /** See RegistryClientOptions.tlsVerify. */
  tlsVerify?: boolean;
  auth?: RegistryAuth;
  /** Manifest format: `oci`, `v2s2` (or `docker`); empty keeps the image's own. */
  format?: string;
  /** Layer compression: only gzip (the default) is supported. */
  compressionFormat?: string;
  progress?: (line: string) => void;
  onEvent?: (event: TransferEvent) => void;
  signal?: AbortSignal;
}

export interface PushResult {
  /** Image ID. */
  id: string;
  /** Where it went, fully qualified and tagged. */
  destination: string;
  /** Digest and size of the manifest the registry now holds under the tag. */
  digest: string;
  manifestSize: number;
}

const parallelLayers = 3;
const readEventIntervalMs = 200;

/** Go's encoding/json escapes these; containers/image's manifests are written by it. */
function goJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/**
 * The registry reference an image is pushed to. Short names are Docker Hub names here, as in
 * containers/image's docker transport: `busybox` means docker.io/library/busybox:latest.
 */
export function pushDestination(destination: string): Reference {
  const name = withoutTransport(destination.trim());
  let ref: Reference;
  try {
    parseReference(name);
    ref = parseNormalizedNamed(name);
  } catch (err) {
    throw new BadRequestError(`parsing reference "${destination}": ${(err as Error).message}`);
  }
  if (ref.digest !== undefined) throw new BadRequestError(`"${destination}": pushing to a digest reference is not supported; push to a tag`);
  return tagNameOnly(ref);
}

function manifestTypeFor(format: string | undefined, stored: string): string {
  switch ((format ?? '').toLowerCase()) {
    case '':
      return stored === MediaType.ociManifest || stored === MediaType.dockerManifest ? stored : MediaType.dockerManifest;
    case 'oci':
      return MediaType.ociManifest;
    case 'v2s2':
    case 'docker':
      return MediaType.dockerManifest;
    case 'v2s1':
      throw new BadRequestError('manifest format v2s1 (Docker schema 1) is not supported: use oci or v2s2');
    default:
      throw new BadRequestError(`unknown manifest format "${format}": use oci or v2s2`);
  }
}

interface PushedBlob {
  digest: string;
  size: number;
}

/** Pushes the image `source` names to `destination` (a registry reference). */
export async function pushImage(store: ImageStore, source: string, destination: string, opts: PushOptions, logger: Logger): Promise<PushResult> {
  const dest = pushDestination(destination || source);
  const compression = (opts.compressionFormat ?? '').toLowerCase();
  if (compression !== '' && compression !== 'gzip') throw new BadRequestError(`compression format "${opts.compressionFormat}" is not supported: use gzip`);
  const image: TransferSource = await store.openForTransfer(source);
  const target = formatReference(dest);
  const say = (line: string): void => opts.progress?.(line);
  const event = (kind: TransferEvent['kind'], digest: string, size: number, offset?: number): void =>
    opts.onEvent?.({ kind, digest, size, ...(offset !== undefined ? { offset } : {}) });
  const reader = (digest: string, size: number): ((bytes: number) => void) => {
    let last = 0;
    return (bytes) => {
      const now = Date.now();
      if (now - last < readEventIntervalMs) return;
      last = now;
      event('read', digest, size, bytes);
    };
  };

  try {
    const wantType = manifestTypeFor(opts.format, image.manifest.mediaType);
    let stored: OciManifest | undefined;
    try {
      stored = JSON.parse(image.manifest.bytes.toString('utf8')) as OciManifest;
    } catch {
      stored = undefined;
    }
    const storedLayers = Array.isArray(stored?.layers) && stored.layers.length === image.layers.length ? stored.layers : undefined;

    let client: RegistryClient;
    try {
      client = await RegistryClient.connect({
        registry: dest.domain,
        repository: dest.path,
        actions: ['pull', 'push'],
        tlsVerify: opts.tlsVerify,
        credentials: credentialsFor(opts.auth, dest.domain, dest.path),
        logger,
        signal: opts.signal,
      });
    } catch (err) {
      throw registryError(`initializing destination docker://${target}`, err);
    }
    try {
      say('Getting image source signatures\n');
      const pushed: PushedBlob[] = new Array<PushedBlob>(image.layers.length);
      const tasks = image.layers.map((layer, i) => async (): Promise<void> => {
        const sourceDigest = layer.blob.digest;
        say(`Copying blob ${sourceDigest}\n`);
        // Blobs that would do, best first: the stored manifest's (keeps the manifest as it was), the
        // blob we hold if it is compressed, compressed forms seen before.
        const candidates: PushedBlob[] = [];
        const add = (digest: string | undefined, size: number | undefined): void => {
          if (!digest || size === undefined || digest === layer.diffId || candidates.some((c) => c.digest === digest)) return;
          candidates.push({ digest, size });
        };
        const storedLayer = storedLayers?.[i];
        const isGzip = layer.blob.compression === 'gzip';
        if (storedLayer && storedLayer.mediaType !== MediaType.ociLayer && storedLayer.mediaType !== MediaType.dockerLayer) {
          add(storedLayer.digest, storedLayer.size);
        }
        if (isGzip) add(layer.blob.digest, layer.blob.size);
        for (const f of store.compressedFormsOf(layer.diffId)) add(f.digest, f.size);

        for (const c of candidates.slice(0, 4)) {
          let present: number | undefined;
          try {
            present = await client.blobExists(c.digest);
          } catch (err) {
            throw registryError(`trying to reuse blob ${c.digest} at destination`, err);
          }
          if (present !== undefined) {
            event('skipped', sourceDigest, layer.blob.size);
            pushed[i] = { digest: c.digest, size: c.size };
            return;
          }
        }
        event('new', sourceDigest, layer.blob.size);
        try {
          if (isGzip) {
            pushed[i] = await client.uploadBlob(
              { open: () => createReadStream(layer.blobPath), digest: layer.blob.digest, size: layer.blob.size },
              reader(sourceDigest, layer.blob.size),
            );
          } else {
            // Compressed on the way out; the digest is known once the last byte went.
            const open = (): Readable => {
              const file = createReadStream(layer.blobPath);
              const gzip = createGzip();
              file.on('error', (err) => gzip.destroy(err));
              return file.pipe(gzip);
            };
            pushed[i] = await client.uploadBlob({ open }, reader(sourceDigest, layer.blob.size));
            store.rememberCompressedForm(layer.diffId, pushed[i]!.digest, pushed[i]!.size);
          }
        } catch (err) {
          throw registryError(`writing blob ${sourceDigest}`, err);
        }
        event('done', sourceDigest, layer.blob.size);
      });
      await runLimited(tasks, parallelLayers, () => undefined);

      const configDigest = `sha256:${image.record.id}`;
      say(`Copying config ${configDigest}\n`);
      try {
        if ((await client.blobExists(configDigest)) === undefined) {
          event('new', configDigest, image.record.configSize);
          await client.uploadBlob({ open: () => createReadStream(image.configPath), digest: configDigest, size: image.record.configSize });
          event('done', configDigest, image.record.configSize);
        } else {
          event('skipped', configDigest, image.record.configSize);
        }
      } catch (err) {
        throw registryError(`writing blob ${configDigest}`, err);
      }

      say('Writing manifest to image destination\n');
      const unchanged =
        stored !== undefined &&
        storedLayers !== undefined &&
        wantType === image.manifest.mediaType &&
        stored.config?.digest === configDigest &&
        storedLayers.every((l, i) => l.digest === pushed[i]!.digest);
      let bytes: Buffer;
      if (unchanged) {
        bytes = image.manifest.bytes;
      } else if (wantType === MediaType.ociManifest) {
        bytes = goJson({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          config: { mediaType: MediaType.ociConfig, digest: configDigest, size: image.record.configSize },
          layers: pushed.map((l) => ({ mediaType: MediaType.ociLayerGzip, digest: l.digest, size: l.size })),
          ...(image.manifest.mediaType === MediaType.ociManifest && stored?.annotations && Object.keys(stored.annotations).length > 0
            ? { annotations: stored.annotations }
            : {}),
        });
      } else {
        bytes = goJson({
          schemaVersion: 2,
          mediaType: MediaType.dockerManifest,
          config: { mediaType: MediaType.dockerConfig, size: image.record.configSize, digest: configDigest },
          layers: pushed.map((l) => ({ mediaType: MediaType.dockerLayerGzip, size: l.size, digest: l.digest })),
        });
      }
      let digest: string;
      try {
        digest = await client.putManifest(dest.tag ?? 'latest', bytes, wantType);
      } catch (err) {
        throw registryError(`uploading manifest ${dest.tag ?? 'latest'} to ${repositoryName(dest)}`, err);
      }
      say('Storing signatures\n');
      logger.info({ id: image.record.id, destination: target, digest }, 'image pushed');
      return { id: image.record.id, destination: target, digest, manifestSize: bytes.length };
    } finally {
      client.close();
    }
  } catch (err) {
    if (err instanceof RegistryError || err instanceof BadRequestError) throw err;
    throw registryError(`pushing ${target}`, err);
  } finally {
    image.release();
  }
}
