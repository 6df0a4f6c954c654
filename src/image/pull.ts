/**
 * Pulling images from a registry into the store, as `podman pull` does: resolve the name to
 * candidates, fetch the manifest (choosing this platform's entry of a manifest list or OCI index),
 * fetch and verify the config, bring in every layer the store lacks (downloaded, verified and
 * unpacked in one pass, a few at a time), then commit everything in one step. A failure at any
 * point drops the staging area, so the store is exactly as it was.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { BadRequestError, PodserveError } from '../errors.js';
import { digestHex, isSha256Digest } from './digest.js';
import { formatReference, isShortName, normalizeName, parseNormalizedNamed, parseReference, repositoryName, tagNameOnly, type Reference } from './reference.js';
import { RegistryClient, RegistryError, credentialsFor, registryError, type FetchedManifest, type RegistryAuth } from './registry.js';
import { goArch, type ImageStore, type Staged, type StagedImage } from './store.js';
import { MediaType, type Descriptor, type ImageConfigFile, type OciIndex, type OciManifest } from './types.js';

/** A step of a blob transfer, for progress displays (Docker's JSON messages are built from these). */
export interface TransferEvent {
  /** new: transfer starts; read: `offset` bytes so far; skipped: already present; done: finished. */
  kind: 'new' | 'read' | 'skipped' | 'done';
  digest: string;
  /** Declared size, when known (-1 otherwise). */
  size: number;
  offset?: number;
}

export interface PullOptions {
  /** See RegistryClientOptions.tlsVerify. */
  tlsVerify?: boolean;
  auth?: RegistryAuth;
  /** Platform to choose from a manifest list (defaults: linux, this machine's architecture). */
  os?: string;
  arch?: string;
  variant?: string;
  /** Resolve short names Docker's way (`busybox` → `docker.io/library/busybox`), for Docker API clients. */
  dockerHubDefault?: boolean;
  /** Pull every tag of the repository (the reference must not name a tag). */
  allTags?: boolean;
  /** Podman's progress text, line by line ("Copying blob sha256:…\n"). */
  progress?: (line: string) => void;
  onEvent?: (event: TransferEvent) => void;
  signal?: AbortSignal;
}

export interface PulledImage {
  id: string;
  /** The name the image was stored under. */
  name: string;
  /** Digest of the manifest that was pulled (the list's, when pulled through one). */
  digest: string;
}

/** Layers downloaded at the same time. */
const parallelLayers = 3;
/** At most one "read" event per blob in this many milliseconds. */
const readEventIntervalMs = 200;
const maxConfigBytes = 32 * 1024 * 1024;


/** Strips a `docker://` transport; refuses other transports, as Podman's remote pull does. */
export function withoutTransport(reference: string): string {
  if (reference.startsWith('docker://')) return reference.slice('docker://'.length);
  const m = /^([a-z][a-z0-9-]*):(?!\d)/.exec(reference);
  if (m && !reference.slice(m[0].length).startsWith('//') && ['containers-storage', 'oci', 'oci-archive', 'docker-archive', 'dir', 'docker-daemon'].includes(m[1]!)) {
    throw new BadRequestError(`unsupported transport "${m[1]}" in "${reference}": only docker transports are supported`);
  }
  return reference;
}

/** Fully qualified, tagged (or digested) names to try for `reference`, as libimage resolves them. */
export function pullCandidates(reference: string, searchRegistries: readonly string[], dockerHubDefault = false): Reference[] {
  // An explicit docker:// transport names a Docker reference: `docker://busybox` is docker.io/library/busybox.
  const viaTransport = reference.trim().startsWith('docker://');
  const name = withoutTransport(reference.trim());
  let parsed: Reference;
  try {
    parsed = parseReference(name);
    parseNormalizedNamed(name); // Docker's rules too: "UPPER/x" is no registry, so it must be lowercase
  } catch (err) {
    throw new BadRequestError(`parsing reference "${reference}": ${(err as Error).message}`);
  }
  if (isShortName(name) && !dockerHubDefault && !viaTransport) {
    if (searchRegistries.length === 0) {
      throw new PodserveError(
        500,
        `short-name "${name}" did not resolve to an alias and no unqualified-search registries are defined in "/etc/containers/registries.conf"`,
      );
    }
    return searchRegistries.map((r) => tagNameOnly(parseNormalizedNamed(`${r}/${formatReference(parsed)}`)));
  }
  const normalized = parseNormalizedNamed(name);
  // A tag next to a digest is dropped: the digest decides (as Docker and Podman do).
  if (normalized.tag !== undefined && normalized.digest !== undefined) delete normalized.tag;
  return [tagNameOnly(normalized)];
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (err) {
    throw new RegistryError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function isList(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/** arm64's variant defaults to v8 and arm's to v7 (how containers/image compares variants). */
function sameVariant(arch: string, a: string | undefined, b: string | undefined): boolean {
  const norm = (v: string | undefined): string => v || (arch === 'arm64' ? 'v8' : arch === 'arm' ? 'v7' : '');
  return norm(a) === norm(b);
}

/** The manifest of a list for the wanted platform, as containers/image chooses it. */
export function chooseInstance(list: OciIndex, listType: string, wanted: { os: string; arch: string; variant?: string }): Descriptor {
  const manifests = Array.isArray(list.manifests) ? list.manifests : [];
  const matching = manifests.filter((m) => m.platform?.os === wanted.os && m.platform?.architecture === wanted.arch && isSha256Digest(m.digest));
  const choice = wanted.variant
    ? matching.find((m) => sameVariant(wanted.arch, m.platform?.variant, wanted.variant))
    : (matching.find((m) => sameVariant(wanted.arch, m.platform?.variant, undefined)) ?? matching[0]);
  if (!choice) {
    const kind = listType === MediaType.ociIndex ? 'image index' : 'manifest list';
    throw new RegistryError(`no image found in ${kind} for architecture ${wanted.arch}, variant "${wanted.variant ?? ''}", OS ${wanted.os}`);
  }
  return choice;
}

/** Progress reporting for one pull: Podman's text lines and the per-blob events. */
class Reporter {
  constructor(private readonly opts: PullOptions) {}

  line(text: string): void {
    this.opts.progress?.(text);
  }

  event(kind: TransferEvent['kind'], digest: string, size: number | undefined, offset?: number): void {
    this.opts.onEvent?.({ kind, digest, size: size ?? -1, ...(offset !== undefined ? { offset } : {}) });
  }

  /** A throttled byte counter for a blob. */
  reader(digest: string, size: number | undefined): (bytes: number) => void {
    let last = 0;
    return (bytes) => {
      const now = Date.now();
      if (now - last < readEventIntervalMs) return;
      last = now;
      this.event('read', digest, size, bytes);
    };
  }
}

/** Runs `tasks` with at most `limit` at once; the first failure wins (the rest are awaited). */
export async function runLimited(tasks: Array<() => Promise<void>>, limit: number, onFailure: () => void): Promise<void> {
  let next = 0;
  let failure: { err: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < tasks.length && !failure) {
      const task = tasks[next++]!;
      try {
        await task();
      } catch (err) {
        if (!failure) {
          failure = { err };
          onFailure();
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw failure.err;
}

/** Pulls one fully qualified reference into the store. */
async function pullOne(store: ImageStore, ref: Reference, opts: PullOptions, logger: Logger, reporter: Reporter): Promise<PulledImage> {
  const name = formatReference(ref);
  const repoName = repositoryName(ref);
  const tagOrDigest = ref.digest ?? ref.tag ?? 'latest';
  const source = `docker://${name}`;
  let client: RegistryClient;
  try {
    client = await RegistryClient.connect({
      registry: ref.domain,
      repository: ref.path,
      actions: ['pull'],
      tlsVerify: opts.tlsVerify,
      credentials: credentialsFor(opts.auth, ref.domain, ref.path),
      logger,
      signal: opts.signal,
    });
  } catch (err) {
    throw registryError(`initializing source ${source}`, err);
  }
  try {
    let top: FetchedManifest;
    try {
      top = await client.getManifest(tagOrDigest);
    } catch (err) {
      throw registryError(`initializing source ${source}: reading manifest ${tagOrDigest} in ${repoName}`, err);
    }
    let manifest = top;
    const extraManifests: FetchedManifest[] = [];
    if (isList(top.mediaType)) {
      const list = parseJson<OciIndex>(top.bytes, `manifest list ${top.digest}`);
      let instance: Descriptor;
      try {
        instance = chooseInstance(list, top.mediaType, { os: opts.os || 'linux', arch: opts.arch || goArch(), variant: opts.variant || undefined });
      } catch (err) {
        throw registryError(`choosing an image from manifest list ${source}`, err);
      }
      try {
        manifest = await client.getManifest(instance.digest);
      } catch (err) {
        throw registryError(`reading manifest ${instance.digest} in ${repoName}`, err);
      }
      extraManifests.push(top);
    }
    if (manifest.mediaType !== MediaType.ociManifest && manifest.mediaType !== MediaType.dockerManifest) {
      throw new RegistryError(`unsupported manifest type "${manifest.mediaType}" for ${name}: podserve reads OCI and Docker schema 2 manifests`);
    }
    const doc = parseJson<OciManifest>(manifest.bytes, `manifest ${manifest.digest}`);
    if (!doc.config || !isSha256Digest(doc.config.digest) || !Array.isArray(doc.layers)) {
      throw new RegistryError(`manifest ${manifest.digest} lacks a config or a list of layers`);
    }
    for (const l of doc.layers) {
      if (!isSha256Digest(l?.digest)) throw new RegistryError(`manifest ${manifest.digest} lists a layer with an unsupported digest "${String(l?.digest)}"`);
      if (l.mediaType?.endsWith('+zstd') || l.mediaType?.endsWith('.zstd')) {
        throw new RegistryError(`layer ${l.digest}: zstd-compressed layers are not supported`);
      }
    }

    reporter.line('Getting image source signatures\n');
    const configDigest = doc.config.digest;
    let configBytes: Buffer;
    reporter.event('new', configDigest, doc.config.size);
    try {
      configBytes = await client.getBlobBytes(configDigest, maxConfigBytes);
    } catch (err) {
      throw registryError(`reading blob ${configDigest}`, err);
    }
    if (typeof doc.config.size === 'number' && doc.config.size !== configBytes.length) {
      throw new RegistryError(`config ${configDigest} has ${configBytes.length} bytes, its manifest declares ${doc.config.size}`);
    }
    const config = parseJson<ImageConfigFile>(configBytes, `config ${configDigest}`);
    const diffIds = config?.rootfs?.diff_ids;
    if (!Array.isArray(diffIds) || !diffIds.every(isSha256Digest)) throw new RegistryError(`config ${configDigest}: rootfs.diff_ids must be a list of sha256 digests`);
    if (diffIds.length !== doc.layers.length) {
      throw new RegistryError(`manifest ${manifest.digest} lists ${doc.layers.length} layers but its config has ${diffIds.length} diff IDs`);
    }

    const staged: Staged = await store.openStaging('pull-');
    try {
      const inFlight = new Map<string, Promise<void>>();
      // On the first failure the other downloads are cut short: the pull is lost anyway.
      const downloads = new Set<IncomingMessage>();
      let failed = false;
      const tasks = doc.layers.map((layer, i) => async (): Promise<void> => {
        const diffId = diffIds[i]!;
        reporter.line(`Copying blob ${layer.digest}\n`);
        const running = inFlight.get(diffId);
        if (running) return running; // the same layer twice in one image
        if (store.reuseLayer(staged, diffId)) {
          reporter.event('skipped', layer.digest, layer.size);
          if (layer.mediaType !== MediaType.ociLayer && layer.mediaType !== MediaType.dockerLayer) store.rememberCompressedForm(diffId, layer.digest, layer.size);
          return;
        }
        const work = (async (): Promise<void> => {
          reporter.event('new', layer.digest, layer.size);
          let blob;
          try {
            blob = await client.getBlob(layer.digest);
          } catch (err) {
            throw registryError(`reading blob ${layer.digest}`, err);
          }
          if (failed) {
            blob.stream.destroy();
            throw new RegistryError('pull abandoned');
          }
          downloads.add(blob.stream);
          const size = typeof layer.size === 'number' && layer.size >= 0 ? layer.size : blob.size;
          try {
            await store.stageLayer(staged, blob.stream, { diffId, blobDigest: layer.digest, blobSize: size, what: `layer ${layer.digest}` }, reporter.reader(layer.digest, size));
          } catch (err) {
            blob.stream.destroy();
            // Content that fails verification is the registry's fault as much as a broken connection.
            if (err instanceof PodserveError && !(err instanceof RegistryError)) throw new RegistryError(`writing blob: ${err.message}`);
            throw registryError(`reading blob ${layer.digest}`, err);
          } finally {
            downloads.delete(blob.stream);
          }
          reporter.event('done', layer.digest, size);
        })();
        inFlight.set(diffId, work);
        return work;
      });
      await runLimited(tasks, parallelLayers, () => {
        failed = true;
        for (const d of downloads) d.destroy();
      });

      reporter.line(`Copying config ${configDigest}\n`);
      reporter.event('done', configDigest, doc.config.size);
      reporter.line('Writing manifest to image destination\n');
      await store.stageBlob(staged, configDigest, configBytes);
      await store.stageBlob(staged, manifest.digest, manifest.bytes);
      for (const m of extraManifests) await store.stageBlob(staged, m.digest, m.bytes);
      reporter.line('Storing signatures\n');
      const storedName = normalizeName(name);
      const image: StagedImage = {
        id: digestHex(configDigest),
        configBytes,
        config,
        manifestDigest: manifest.digest,
        manifestType: manifest.mediaType,
        manifestSize: manifest.bytes.length,
        annotations: doc.annotations ?? {},
        names: [storedName],
        extraManifests: extraManifests.map((m) => ({ digest: m.digest, size: m.bytes.length })),
      };
      const [record] = await store.commitStaged(staged, [image]);
      logger.info({ id: record!.id, name: storedName, digest: top.digest }, 'image pulled');
      return { id: record!.id, name: storedName, digest: top.digest };
    } finally {
      await store.closeStaging(staged);
    }
  } finally {
    client.close();
  }
}

/**
 * Pulls `reference` (every tag of it with `allTags`) into the store. Candidates of a short name are
 * tried in turn; the errors of all failed candidates are reported together, as libimage does.
 */
export async function pullImage(store: ImageStore, reference: string, opts: PullOptions, logger: Logger): Promise<PulledImage[]> {
  const reporter = new Reporter(opts);
  const candidates = pullCandidates(reference, store.searchRegistries, opts.dockerHubDefault);
  if (opts.allTags) {
    const ref = candidates[0]!;
    const parsed = parseReference(withoutTransport(reference.trim()));
    if (parsed.tag !== undefined || parsed.digest !== undefined) throw new BadRequestError(`tag can't be used with --all-tags/-a`);
    let tags: string[];
    const client = await RegistryClient.connect({
      registry: ref.domain,
      repository: ref.path,
      actions: ['pull'],
      tlsVerify: opts.tlsVerify,
      credentials: credentialsFor(opts.auth, ref.domain, ref.path),
      logger,
      signal: opts.signal,
    }).catch((err: unknown) => {
      throw registryError(`initializing source docker://${repositoryName(ref)}`, err);
    });
    try {
      tags = await client.listTags();
    } catch (err) {
      throw registryError(`listing tags of ${repositoryName(ref)}`, err);
    } finally {
      client.close();
    }
    const pulled: PulledImage[] = [];
    for (const tag of tags) {
      const tagged: Reference = { domain: ref.domain, path: ref.path, tag };
      reporter.line(`Trying to pull ${formatReference(tagged)}...\n`);
      pulled.push(await pullOne(store, tagged, opts, logger, reporter));
    }
    return pulled;
  }

  const errors: Error[] = [];
  for (const candidate of candidates) {
    reporter.line(`Trying to pull ${formatReference(candidate)}...\n`);
    try {
      return [await pullOne(store, candidate, opts, logger, reporter)];
    } catch (err) {
      logger.debug({ candidate: formatReference(candidate), err: (err as Error).message }, 'pull candidate failed');
      errors.push(err as Error);
      if (opts.signal?.aborted) break;
    }
  }
  if (errors.length === 1) throw errors[0];
  throw new RegistryError(`${errors.length} errors occurred while pulling:${errors.map((e) => `\n * ${e.message}`).join('')}`);
}
