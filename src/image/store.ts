/**
 * podserve's image store.
 *
 * Layout under the root directory:
 *   images.json             every image record; replaced atomically — the single commit point
 *   blobs/sha256/<hex>      content-addressed blobs: configs, manifests, layer blobs as received
 *   layers/<hex>/diff       a layer unpacked once, keyed by diff ID, shared by every image using it
 *   layers/<hex>/layer.json the layer's record (written before the directory is renamed into place)
 *   l/<short>               short links to layers/<hex>/diff, so overlay mount options stay short
 *   tmp/                    staging area; emptied on open
 *
 * Writes follow one rule: build everything under tmp/, fsync, rename into place, then rewrite
 * images.json. A crash before that last step leaves only unreferenced files, which `open`
 * removes; a failed load or import removes its staging directory and leaves the store as it was.
 * Mutations are serialised by an in-process lock; the slow parts of a load (reading, hashing,
 * unpacking) run outside it. Layers a running load or save relies on are pinned so that a
 * concurrent removal does not delete them.
 */
import { readdir, readFile, rename, rm, symlink, mkdir, open as openFile, writeFile, readlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Logger } from 'pino';
import { BadRequestError, ConflictError, InternalError, PodserveError, Sentinel, noSuchImage } from '../errors.js';
import { asArchiveError, cleanMemberPath, decompressed, detectCompression, peek, resolveMember, spoolArchive, type SpooledArchive, type SpooledFile } from './archive.js';
import { applyChanges } from './changes.js';
import { digestHex, isSha256Digest, sha256Digest, Sha256Counter } from './digest.js';
import { ensureDir, exists, fsyncPath, isErrno, makeTempDir, removeTree, syncFilesystem, writeFileAtomic } from './fsutil.js';
import { toLibpodImageData, type ImageDetails, type ImageHistoryItem } from './inspect.js';
import { isMountPoint, mountOverlay, rootfsPaths, unmountOverlay } from './overlay.js';
import {
  formatReference,
  fullIdRe,
  lookupCandidates,
  normalizeName,
  parseReference,
  repositoryName,
  isShortName,
  tagNameOnly,
  stripTagIfDigested,
} from './reference.js';
import { RelationIndex } from './relations.js';
import { writeDockerArchive, writeOciArchive, type SaveImage } from './save.js';
import {
  AnnotationContainerdName,
  AnnotationRefName,
  MediaType,
  type ArchiveFormat,
  type ContainerConfig,
  type Descriptor,
  type DockerArchiveItem,
  type ImageConfigFile,
  type ImageRecord,
  type LayerRecord,
  type OciIndex,
  type OciManifest,
} from './types.js';
import { unpackLayer } from './unpack.js';

const storeVersion = 1;
/** Metadata documents (manifests, configs, index) larger than this are refused rather than parsed. */
const maxJsonBytes = 32 * 1024 * 1024;
const linkNameLength = 24;

export interface ImageStoreOptions {
  /** Registries tried, after localhost, for short names (registries.conf's unqualified-search-registries). */
  searchRegistries?: string[];
}

export interface LoadResult {
  /** Names as Podman reports them: the image's names, or `sha256:<id>` for an untagged image. */
  names: string[];
  ids: string[];
}

export interface ImportOptions {
  /** Name to give the image (normalised like `podman import`: `foo` → `localhost/foo:latest`). */
  reference?: string;
  /** Dockerfile-style instructions applied to the config (CMD, ENV, …). */
  changes?: string[];
  /** Comment of the history entry (default "imported from tarball"). */
  message?: string;
  os?: string;
  architecture?: string;
  variant?: string;
  /** Creation time (RFC 3339); now when absent. */
  created?: string;
}

/** Which containers use an image: true/false, or their IDs (the first one is named in errors). */
export type InUseCheck = (imageId: string) => boolean | string[];

export interface RemoveOptions {
  force?: boolean;
  /** Do not remove dangling parent images along with the image. */
  noPrune?: boolean;
  inUse?: InUseCheck;
  /** Skip names that match no image instead of reporting them. */
  ignore?: boolean;
  /** Called with force when the image is in use: the engine removes those containers. */
  removeContainers?: (imageId: string) => Promise<void>;
}

export interface RemoveReport {
  untagged: string[];
  deleted: string[];
}

export interface PruneOptions {
  /** Remove every image no container uses, not only dangling ones. */
  all?: boolean;
  inUse?: InUseCheck;
  /** Extra condition (Podman's label/until filters live with the caller). */
  filter?: (details: ImageDetails) => boolean;
}

export interface PruneReportEntry {
  id: string;
  size: number;
}

export interface ListOptions {
  /** Include intermediate images (untagged images that have children). */
  all?: boolean;
  /** Number of containers using an image. */
  containers?: (imageId: string) => number;
}

export interface StoreInfo {
  graphRoot: string;
  graphDriverName: 'overlay';
  imageCount: number;
  layerCount: number;
}

/** An image whose blobs and layers are staged, ready to be committed. */
export interface StagedImage {
  id: string;
  configBytes: Buffer;
  config: ImageConfigFile;
  manifestDigest: string;
  manifestType: string;
  manifestSize: number;
  annotations: Record<string, string>;
  /** Normalised names to assign. */
  names: string[];
  /**
   * Further manifests the image is known by (the manifest list it was pulled through): their
   * digests join the image's digests, after the image's own manifest. Their bytes must be staged.
   */
  extraManifests?: Array<{ digest: string; size: number }>;
}

/** One image found in an archive, ready to be committed. */
interface PendingImage extends StagedImage {
  layers: PendingLayer[];
  /** What `load` reports for this image. */
  reportNames: string[];
}

/** A layer to bring in from a stream (a registry download): the blob as sent, verified and unpacked in one pass. */
export interface IncomingLayer {
  diffId: string;
  /** Digest and size of the blob as the manifest lists it. */
  blobDigest: string;
  blobSize?: number;
  /** For messages ("layer sha256:…"). */
  what: string;
}

/** An image opened for reading its blobs (a push): pinned until `release`. */
export interface TransferSource {
  record: ImageRecord;
  /** The name the image was found under. */
  resolvedName: string;
  configPath: string;
  /** The image's current manifest as stored. */
  manifest: { bytes: Buffer; digest: string; mediaType: string };
  /** Bottom layer first. */
  layers: Array<LayerRecord & { blobPath: string }>;
  release: () => void;
}

interface PendingLayer {
  diffId: string;
  /** The layer blob as found in the archive. */
  blob: SpooledFile;
  /** Archive member name, for error messages. */
  member: string;
}

/** Everything staged under tmp/ by a load, import or pull, waiting for the commit. Opaque outside the store. */
export interface Staged {
  dir: string;
  /** Unpacked layers: diff ID → staged layer directory (contains layer.json and diff/). */
  layers: Map<string, { dir: string; record: LayerRecord }>;
  /** Blobs to keep: digest → staged file. */
  blobs: Map<string, string>;
  /** Layers already in the store that this operation relies on. */
  pinnedLayers: string[];
}

class Mutex {
  private tail: Promise<void> = Promise.resolve();

  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn);
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }
}

/** Resolves once `stream` can take more data, or is gone. */
function drainedOrClosed(stream: PassThrough): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
  });
}

/** Now, in RFC 3339 with sub-millisecond digits and trailing zeros trimmed, as Go writes times. */
function nowRfc3339Nano(): string {
  const iso = new Date().toISOString();
  const fraction = (iso.slice(20, 23) + String(process.hrtime.bigint() % 1_000_000n).padStart(6, '0')).replace(/0+$/, '');
  return `${iso.slice(0, 19)}${fraction ? `.${fraction}` : ''}Z`;
}

/** The host architecture in Go's (and the image spec's) spelling. */
export function goArch(): string {
  switch (process.arch) {
    case 'x64':
      return 'amd64';
    case 'ia32':
      return '386';
    case 'ppc64':
      return 'ppc64le';
    default:
      return process.arch;
  }
}

async function readJsonFile<T>(file: SpooledFile | string, what: string): Promise<{ value: T; bytes: Buffer }> {
  const path = typeof file === 'string' ? file : file.file;
  if (typeof file !== 'string' && file.size > maxJsonBytes) throw new BadRequestError(`${what} is too large (${file.size} bytes)`);
  const bytes = await readFile(path);
  try {
    return { value: JSON.parse(bytes.toString('utf8')) as T, bytes };
  } catch (err) {
    throw new BadRequestError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

function validateConfig(config: ImageConfigFile, what: string): void {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new BadRequestError(`${what} is not a JSON object`);
  const diffIds = config.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || !diffIds.every(isSha256Digest)) {
    throw new BadRequestError(`${what}: rootfs.diff_ids must be a list of sha256 digests`);
  }
}

function cloneRecords(images: Map<string, ImageRecord>): Map<string, ImageRecord> {
  return new Map([...images].map(([id, r]) => [id, structuredClone(r)]));
}

/** Gives `name` to `record`, taking it away from whichever image had it (names are unique). */
function assignName(images: Map<string, ImageRecord>, record: ImageRecord, name: string): void {
  for (const other of images.values()) {
    if (other.id !== record.id && other.names.includes(name)) other.names = other.names.filter((n) => n !== name);
  }
  if (!record.names.includes(name)) record.names.push(name);
  record.namesHistory = [name, ...record.namesHistory.filter((n) => n !== name)];
}

export class ImageStore {
  readonly root: string;
  readonly logger: Logger;
  /** Registries tried for short names after localhost (and, for pulls, the only ones). */
  readonly searchRegistries: readonly string[];
  private readonly imagesFile: string;
  private readonly blobsDir: string;
  private readonly layersDir: string;
  private readonly linksDir: string;
  private readonly tmpDir: string;
  private images = new Map<string, ImageRecord>();
  private readonly layers = new Map<string, LayerRecord>();
  private readonly pins = new Map<string, number>();
  /**
   * Compressed forms of layers seen on the way in or made on the way out (diff ID -> blobs), so a
   * push can find a blob the registry already has without compressing again. Kept in memory: a
   * lost entry only costs a recompression, which gives the same bytes.
   */
  private readonly compressedForms = new Map<string, Array<{ digest: string; size: number }>>();
  private readonly lock = new Mutex();
  private gcDeferred = false;

  private constructor(root: string, logger: Logger, options: ImageStoreOptions) {
    this.root = root;
    this.logger = logger;
    this.searchRegistries = options.searchRegistries ?? [];
    this.imagesFile = join(root, 'images.json');
    this.blobsDir = join(root, 'blobs', 'sha256');
    this.layersDir = join(root, 'layers');
    this.linksDir = join(root, 'l');
    this.tmpDir = join(root, 'tmp');
  }

  /** Opens (creating if needed) the store at `root`, and removes what an interrupted operation left. */
  static async open(root: string, logger: Logger, options: ImageStoreOptions = {}): Promise<ImageStore> {
    const store = new ImageStore(resolvePath(root), logger, options);
    await store.recover();
    return store;
  }

  // ---------------------------------------------------------------------------------------------
  // paths

  private blobPath(digest: string): string {
    return join(this.blobsDir, digestHex(digest));
  }

  private layerDir(diffId: string): string {
    return join(this.layersDir, digestHex(diffId));
  }

  /** The directory holding the files of a layer. */
  layerDiffDir(diffId: string): string {
    return join(this.layerDir(diffId), 'diff');
  }

  private linkName(diffId: string): string {
    return digestHex(diffId).slice(0, linkNameLength);
  }

  // ---------------------------------------------------------------------------------------------
  // start-up

  private async recover(): Promise<void> {
    for (const dir of [this.root, this.blobsDir, this.layersDir, this.linksDir, this.tmpDir, join(this.root, 'empty')]) {
      await ensureDir(dir, 0o700);
    }
    for (const entry of await readdir(this.tmpDir)) await removeTree(join(this.tmpDir, entry));

    let persisted: { version?: number; images?: ImageRecord[] } = {};
    let fresh = false;
    try {
      persisted = JSON.parse(await readFile(this.imagesFile, 'utf8')) as typeof persisted;
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw new InternalError(`image store ${this.imagesFile} is unreadable: ${(err as Error).message}`);
      fresh = true;
    }
    if (persisted.version !== undefined && persisted.version !== storeVersion) {
      throw new InternalError(`image store ${this.root} has version ${persisted.version}; this podserve understands ${storeVersion}`);
    }

    for (const hex of await readdir(this.layersDir)) {
      const dir = join(this.layersDir, hex);
      try {
        const record = JSON.parse(await readFile(join(dir, 'layer.json'), 'utf8')) as LayerRecord;
        if (digestHex(record.diffId) !== hex) throw new Error('layer.json does not match its directory');
        this.layers.set(record.diffId, record);
      } catch (err) {
        this.logger.warn({ layer: hex, err: (err as Error).message }, 'removing incomplete layer');
        await removeTree(dir);
      }
    }

    let dropped = false;
    for (const record of persisted.images ?? []) {
      const missing = record.layers.filter((l) => !this.layers.has(l));
      if (missing.length > 0) {
        this.logger.error({ image: record.id, missing }, 'image refers to missing layers; dropping it');
        dropped = true;
        continue;
      }
      this.images.set(record.id, record);
    }
    if (dropped || fresh) await this.persist(this.images);

    for (const record of this.layers.values()) await this.ensureLink(record.diffId);
    await this.collectGarbage();
    this.logger.debug({ root: this.root, images: this.images.size, layers: this.layers.size }, 'image store open');
  }

  private async ensureLink(diffId: string): Promise<void> {
    const link = join(this.linksDir, this.linkName(diffId));
    const target = `../layers/${digestHex(diffId)}/diff`;
    try {
      if ((await readlink(link)) === target) return;
    } catch (err) {
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'EINVAL')) throw err;
    }
    const tmp = `${link}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, link);
  }

  private async persist(images: Map<string, ImageRecord>): Promise<void> {
    const body = JSON.stringify({ version: storeVersion, images: [...images.values()] });
    await writeFileAtomic(this.imagesFile, body);
  }

  // ---------------------------------------------------------------------------------------------
  // pins and garbage collection

  private pin(key: string): void {
    this.pins.set(key, (this.pins.get(key) ?? 0) + 1);
  }

  private unpin(key: string): void {
    const n = (this.pins.get(key) ?? 0) - 1;
    if (n > 0) this.pins.set(key, n);
    else this.pins.delete(key);
  }

  private releasePins(keys: readonly string[]): void {
    for (const k of keys) this.unpin(k);
    if (this.gcDeferred && this.pins.size === 0) {
      this.gcDeferred = false;
      void this.lock.run(() => this.collectGarbage()).catch((err: unknown) => this.logger.warn({ err }, 'deferred image garbage collection failed'));
    }
  }

  /** Deletes layers and blobs no image refers to (and nobody has pinned). Caller holds the lock. */
  private async collectGarbage(): Promise<void> {
    const usedLayers = new Set<string>();
    const usedBlobs = new Set<string>();
    for (const img of this.images.values()) {
      usedBlobs.add(`sha256:${img.id}`);
      for (const d of img.digests) usedBlobs.add(d);
      usedBlobs.add(img.manifestDigest);
      for (const l of img.layers) usedLayers.add(l);
    }
    for (const [diffId, layer] of this.layers) {
      if (usedLayers.has(diffId) || this.pins.has(`layer:${diffId}`)) {
        usedBlobs.add(layer.blob.digest);
        // Pinned but unused: collect again once the pin is released.
        if (!usedLayers.has(diffId)) this.gcDeferred = true;
        continue;
      }
      this.layers.delete(diffId);
      await rm(join(this.linksDir, this.linkName(diffId)), { force: true });
      // Rename first so a crash never leaves a half-deleted directory under its real name.
      const doomed = join(this.tmpDir, `gc-${digestHex(diffId)}-${process.pid}`);
      try {
        await rename(this.layerDir(diffId), doomed);
      } catch (err) {
        if (!isErrno(err, 'ENOENT')) throw err;
      }
      await removeTree(doomed);
      this.logger.debug({ layer: diffId }, 'layer removed');
    }
    for (const key of this.pins.keys()) {
      if (!key.startsWith('blob:')) continue;
      const digest = key.slice('blob:'.length);
      if (!usedBlobs.has(digest)) this.gcDeferred = true;
      usedBlobs.add(digest);
    }
    for (const hex of await readdir(this.blobsDir)) {
      if (!fullIdRe.test(hex) || usedBlobs.has(`sha256:${hex}`)) continue;
      await rm(join(this.blobsDir, hex), { force: true });
    }
    const liveLinks = new Set([...this.layers.keys()].map((d) => this.linkName(d)));
    for (const name of await readdir(this.linksDir)) {
      if (!liveLinks.has(name)) await rm(join(this.linksDir, name), { force: true });
    }
  }

  // ---------------------------------------------------------------------------------------------
  // lookups

  /** Exact ID, exact name, or unique ID prefix (how containers/storage looks images up). */
  private storeLookup(key: string): ImageRecord | undefined {
    const byId = this.images.get(key);
    if (byId) return byId;
    for (const img of this.images.values()) if (img.names.includes(key)) return img;
    if (/^[a-f0-9]+$/.test(key)) {
      const matches = [...this.images.keys()].filter((id) => id.startsWith(key));
      if (matches.length === 1) return this.images.get(matches[0]!);
    }
    return undefined;
  }

  /**
   * Podman's name resolution. Returns the record and the name it was found under (the name that
   * an `rmi` of it would untag), or undefined.
   */
  lookup(nameOrId: string): { record: ImageRecord; resolvedName: string } | undefined {
    let name = nameOrId.trim();
    if (name === '') return undefined;
    try {
      const ref = parseReference(name);
      if (ref.tag !== undefined && ref.digest !== undefined) name = formatReference(stripTagIfDigested(ref));
    } catch {
      // not a reference; may still be "sha256:<id>"
    }
    const original = name;
    const byDigest = name.startsWith('sha256:');
    if (byDigest) name = name.slice('sha256:'.length);
    if (byDigest || fullIdRe.test(name)) {
      if (!fullIdRe.test(name)) return undefined;
      const record = this.storeLookup(name);
      return record ? { record, resolvedName: original } : undefined;
    }

    let candidates: string[];
    try {
      candidates = lookupCandidates(name, this.searchRegistries);
    } catch {
      return undefined;
    }
    for (const candidate of candidates) {
      const record = this.storeLookup(candidate);
      if (record) return { record, resolvedName: candidate };
    }
    const byPrefix = this.storeLookup(name);
    if (byPrefix) return { record: byPrefix, resolvedName: name };
    return this.lookupInDigestsAndRepoTags(name);
  }

  private lookupInDigestsAndRepoTags(name: string): { record: ImageRecord; resolvedName: string } | undefined {
    let ref;
    try {
      ref = parseReference(name);
    } catch {
      return undefined;
    }
    if (ref.digest !== undefined) {
      for (const img of this.images.values()) if (img.digests.includes(ref.digest)) return { record: img, resolvedName: name };
      return undefined;
    }
    if (!isShortName(name)) return undefined;
    const wanted = tagNameOnly(ref);
    const wantedRepo = repositoryName(wanted);
    for (const img of this.images.values()) {
      for (const stored of img.names) {
        let r;
        try {
          r = parseReference(stored);
        } catch {
          continue;
        }
        if (r.tag !== wanted.tag) continue;
        const repo = repositoryName(r);
        if (repo === wantedRepo || repo.endsWith(`/${wantedRepo}`)) return { record: img, resolvedName: stored };
      }
    }
    return undefined;
  }

  /** The image `nameOrId` refers to; throws Podman's "image not known" (404) otherwise. */
  resolve(nameOrId: string): ImageRecord {
    const found = this.lookup(nameOrId);
    if (!found) throw noSuchImage(nameOrId);
    return structuredClone(found.record);
  }

  exists(nameOrId: string): boolean {
    return this.lookup(nameOrId) !== undefined;
  }

  /** Every image, in store order (copies). */
  list(): ImageRecord[] {
    return [...this.images.values()].map((r) => structuredClone(r));
  }

  /**
   * Bytes an image takes, counted like Podman's storage: layers, config, the current manifest and
   * every manifest by digest (so a freshly stored manifest counts twice).
   */
  size(id: string): number {
    return this.sizeOfRecord(this.images.get(id) ?? this.resolve(id));
  }

  private detailsOf(record: ImageRecord, index: RelationIndex, containers?: (id: string) => number): ImageDetails {
    return {
      record: structuredClone(record),
      size: this.size(record.id),
      parentId: index.parentOf(record)?.id ?? '',
      dangling: index.isDangling(record),
      containers: containers?.(record.id) ?? 0,
      layerDirs: [...record.layers].reverse().map((l) => this.layerDiffDir(l)),
    };
  }

  details(nameOrId: string, containers?: (id: string) => number): ImageDetails {
    const record = this.lookup(nameOrId)?.record;
    if (!record) throw noSuchImage(nameOrId);
    return this.detailsOf(record, new RelationIndex(this.images.values()), containers);
  }

  /** Data for GET /images/json; intermediate images only with `all`. */
  listDetails(options: ListOptions = {}): ImageDetails[] {
    const index = new RelationIndex(this.images.values());
    const out: ImageDetails[] = [];
    for (const record of this.images.values()) {
      if (!options.all && index.isIntermediate(record)) continue;
      out.push(this.detailsOf(record, index, options.containers));
    }
    return out;
  }

  /** Podman's ImageData for `nameOrId`. */
  inspect(nameOrId: string): Record<string, unknown> {
    return toLibpodImageData(this.details(nameOrId));
  }

  /** History, newest first, the way libimage walks it. */
  history(nameOrId: string): ImageHistoryItem[] {
    const record = this.lookup(nameOrId)?.record;
    if (!record) throw noSuchImage(nameOrId);
    const index = new RelationIndex(this.images.values());
    const history = record.config.history ?? [];
    const used = new Set<string>();
    const items: ImageHistoryItem[] = [];
    let layerIndex = record.layers.length - 1;
    for (let x = history.length - 1; x >= 0; x--) {
      const h = history[x]!;
      const item: ImageHistoryItem = {
        id: '<missing>',
        created: h.created,
        createdBy: h.created_by ?? '',
        comment: h.comment ?? '',
        size: 0,
        tags: null,
      };
      if (layerIndex >= 0) {
        const layerId = record.layers[layerIndex]!;
        if (!h.empty_layer) item.size = this.layers.get(layerId)?.size ?? 0;
        const owner = index.withChain(record.layers.slice(0, layerIndex + 1))[0];
        if (owner && !used.has(owner.id)) {
          item.id = owner.id;
          used.add(owner.id);
        }
        if (layerIndex > 0 && !h.empty_layer) layerIndex--;
      }
      items.push(item);
    }
    return items;
  }

  info(): StoreInfo {
    return { graphRoot: this.root, graphDriverName: 'overlay', imageCount: this.images.size, layerCount: this.layers.size };
  }

  // ---------------------------------------------------------------------------------------------
  // load

  /**
   * Loads every image of a docker-archive or oci-archive (plain or gzip) read from `input`.
   * Either all images of the archive are stored, or none and the store is unchanged.
   */
  async load(input: Readable): Promise<LoadResult> {
    const staged = await this.newStaging('load-');
    try {
      const { stream } = await decompressed(input, 'archive').catch((err: unknown) => {
        throw asArchiveError(err, 'archive');
      });
      const spoolDir = join(staged.dir, 'spool');
      await mkdir(spoolDir);
      const archive = await spoolArchive(stream, spoolDir, 'archive', this.logger);
      let pending: PendingImage[];
      if (archive.files.has('oci-layout') && archive.files.has('index.json')) {
        pending = await this.parseOciArchive(archive, staged);
      } else if (archive.files.has('manifest.json')) {
        pending = await this.parseDockerArchive(archive, staged);
      } else {
        throw new BadRequestError(
          'payload does not match any of the supported image formats: expected an oci-archive (oci-layout, index.json) or a docker-archive (manifest.json)',
        );
      }
      if (pending.length === 0) throw new BadRequestError('archive contains no image');
      await this.stageLayers(pending, staged);
      await this.commit(staged, pending);
      const result: LoadResult = { names: pending.flatMap((p) => p.reportNames), ids: pending.map((p) => p.id) };
      this.logger.info({ images: result.names }, 'images loaded');
      return result;
    } finally {
      await this.dropStaging(staged);
    }
  }

  private async newStaging(prefix: string): Promise<Staged> {
    return { dir: await makeTempDir(this.tmpDir, prefix), layers: new Map(), blobs: new Map(), pinnedLayers: [] };
  }

  private async dropStaging(staged: Staged): Promise<void> {
    this.releasePins(staged.pinnedLayers.map((d) => `layer:${d}`));
    staged.pinnedLayers = [];
    await removeTree(staged.dir);
  }

  private async parseOciArchive(archive: SpooledArchive, staged: Staged): Promise<PendingImage[]> {
    const blob = (digest: string, what: string): SpooledFile => {
      if (!isSha256Digest(digest)) throw new BadRequestError(`${what}: unsupported digest "${digest}"`);
      const file = archive.files.get(`blobs/sha256/${digestHex(digest)}`);
      if (!file) throw new BadRequestError(`${what}: blob ${digest} is missing from the archive`);
      if (file.digest !== digest) throw new BadRequestError(`${what}: blob ${digest} has digest ${file.digest} (corrupt archive)`);
      return file;
    };
    const { value: index } = await readJsonFile<OciIndex>(archive.files.get('index.json')!, 'index.json');
    if (!Array.isArray(index.manifests)) throw new BadRequestError('index.json has no manifests list');
    const pending: PendingImage[] = [];
    for (const [i, entry] of index.manifests.entries()) {
      let descriptor: Descriptor = entry;
      const what = `index.json manifest #${i}`;
      if (descriptor.mediaType === MediaType.ociIndex || descriptor.mediaType === MediaType.dockerManifestList) {
        descriptor = await this.pickPlatform(blob(descriptor.digest, what), what);
      }
      const manifestFile = blob(descriptor.digest, what);
      const { value: manifest } = await readJsonFile<OciManifest>(manifestFile, `manifest ${descriptor.digest}`);
      staged.blobs.set(descriptor.digest, manifestFile.file);
      if (!manifest.config || !Array.isArray(manifest.layers)) throw new BadRequestError(`manifest ${descriptor.digest} lacks config or layers`);
      const configFile = blob(manifest.config.digest, `config of manifest ${descriptor.digest}`);
      const { value: config, bytes: configBytes } = await readJsonFile<ImageConfigFile>(configFile, `config ${manifest.config.digest}`);
      validateConfig(config, `config ${manifest.config.digest}`);
      if (config.rootfs.diff_ids.length !== manifest.layers.length) {
        throw new BadRequestError(
          `manifest ${descriptor.digest} lists ${manifest.layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff IDs`,
        );
      }
      const layers = manifest.layers.map((l, n): PendingLayer => {
        if (l.mediaType?.endsWith('+zstd')) throw new BadRequestError(`layer ${l.digest}: zstd-compressed layers are not supported`);
        return { diffId: config.rootfs.diff_ids[n]!, blob: blob(l.digest, `layer ${n} of manifest ${descriptor.digest}`), member: `blobs/sha256/${digestHex(l.digest)}` };
      });
      const refName = descriptor.annotations?.[AnnotationContainerdName] || descriptor.annotations?.[AnnotationRefName] || '';
      const id = digestHex(manifest.config.digest);
      let names: string[] = [];
      if (refName) {
        try {
          names = [normalizeName(refName)];
        } catch (err) {
          throw new BadRequestError(`image name "${refName}" in index.json: ${(err as Error).message}`);
        }
      }
      pending.push({
        id,
        configBytes,
        config,
        manifestDigest: descriptor.digest,
        manifestType: descriptor.mediaType || manifest.mediaType || MediaType.ociManifest,
        manifestSize: manifestFile.size,
        annotations: manifest.annotations ?? {},
        layers,
        names,
        reportNames: names.length > 0 ? names : [`sha256:${id}`],
      });
    }
    return pending;
  }

  /** For a multi-platform index, the manifest for this machine (or the first one). */
  private async pickPlatform(indexFile: SpooledFile, what: string): Promise<Descriptor> {
    const { value: nested } = await readJsonFile<OciIndex>(indexFile, what);
    const manifests = Array.isArray(nested.manifests) ? nested.manifests : [];
    const match = manifests.find((m) => m.platform?.os === 'linux' && m.platform?.architecture === goArch()) ?? manifests[0];
    if (!match) throw new BadRequestError(`${what}: image index lists no manifests`);
    return match;
  }

  private async parseDockerArchive(archive: SpooledArchive, staged: Staged): Promise<PendingImage[]> {
    const { value: items } = await readJsonFile<DockerArchiveItem[]>(archive.files.get('manifest.json')!, 'manifest.json');
    if (!Array.isArray(items)) throw new BadRequestError('manifest.json is not a list');
    const byId = new Map<string, PendingImage>();
    for (const [i, item] of items.entries()) {
      const what = `manifest.json item #${i}`;
      if (typeof item?.Config !== 'string' || !Array.isArray(item.Layers)) throw new BadRequestError(`${what} lacks Config or Layers`);
      const configFile = resolveMember(archive, item.Config);
      if (!configFile) throw new BadRequestError(`${what}: config "${item.Config}" is missing from the archive`);
      const { value: config, bytes: configBytes } = await readJsonFile<ImageConfigFile>(configFile, `config "${item.Config}"`);
      validateConfig(config, `config "${item.Config}"`);
      const id = digestHex(configFile.digest);
      if (config.rootfs.diff_ids.length !== item.Layers.length) {
        throw new BadRequestError(`${what} lists ${item.Layers.length} layers but its config has ${config.rootfs.diff_ids.length} diff IDs`);
      }
      const layers = item.Layers.map((member, n): PendingLayer => {
        if (typeof member !== 'string') throw new BadRequestError(`${what}: layer #${n} is not a path`);
        cleanMemberPath(member, `${what} layer`);
        const file = resolveMember(archive, member);
        if (!file) throw new BadRequestError(`${what}: layer "${member}" is missing from the archive`);
        return { diffId: config.rootfs.diff_ids[n]!, blob: file, member };
      });
      // The manifest c/image synthesises for a docker-archive; its digest is the image's Digest.
      const manifest = {
        schemaVersion: 2,
        mediaType: MediaType.dockerManifest,
        config: { mediaType: MediaType.dockerConfig, size: configBytes.length, digest: configFile.digest },
        layers: layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, size: l.blob.size, digest: l.diffId })),
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const manifestDigest = sha256Digest(manifestBytes);
      const manifestPath = join(staged.dir, `manifest-${digestHex(manifestDigest)}`);
      await writeFile(manifestPath, manifestBytes);
      staged.blobs.set(manifestDigest, manifestPath);

      const names: string[] = [];
      for (const tag of item.RepoTags ?? []) {
        try {
          names.push(normalizeName(tag));
        } catch (err) {
          throw new BadRequestError(`${what}: invalid tag "${tag}": ${(err as Error).message}`);
        }
      }
      const existing = byId.get(id);
      if (existing) {
        for (const n of names) if (!existing.names.includes(n)) existing.names.push(n);
        existing.reportNames = existing.names.length > 0 ? [...existing.names] : [`sha256:${id}`];
        continue;
      }
      byId.set(id, {
        id,
        configBytes,
        config,
        manifestDigest,
        manifestType: MediaType.dockerManifest,
        manifestSize: manifestBytes.length,
        annotations: {},
        layers,
        names,
        reportNames: names.length > 0 ? [...names] : [`sha256:${id}`],
      });
    }
    return [...byId.values()];
  }

  /** Unpacks (and verifies) every layer the store does not have yet; pins the others. */
  private async stageLayers(pending: PendingImage[], staged: Staged): Promise<void> {
    for (const image of pending) {
      staged.blobs.set(`sha256:${image.id}`, await this.stageBytes(staged, image.configBytes));
      for (const layer of image.layers) {
        if (this.reuseLayer(staged, layer.diffId)) continue;
        await this.unpackStaged(staged, layer.blob.file, layer.diffId, layer.blob.digest, layer.blob.size, `layer "${layer.member}"`);
      }
    }
  }

  /** Writes bytes to a staging file; returns its path. */
  private async stageBytes(staged: Staged, bytes: Buffer): Promise<string> {
    const path = join(staged.dir, `blob-${digestHex(sha256Digest(bytes))}`);
    await writeFile(path, bytes);
    return path;
  }

  private async unpackStaged(staged: Staged, blobFile: string, diffId: string, blobDigest: string, blobSize: number, what: string): Promise<void> {
    const dir = join(staged.dir, `layer-${digestHex(diffId)}`);
    await mkdir(dir, { mode: 0o700 });
    const diff = join(dir, 'diff');
    await mkdir(diff, { mode: 0o755 });
    const result = await unpackLayer(createReadStream(blobFile), diff, dir, what, this.logger);
    if (result.diffId !== diffId) {
      throw new BadRequestError(`${what}: digest mismatch: the image config expects ${diffId}, the layer's content is ${result.diffId}`);
    }
    const record: LayerRecord = {
      diffId,
      size: result.size,
      blob: { digest: blobDigest, size: blobSize, compression: result.compression === 'gzip' ? 'gzip' : 'none' },
    };
    await writeFile(join(dir, 'layer.json'), JSON.stringify(record));
    staged.layers.set(diffId, { dir, record });
    staged.blobs.set(blobDigest, blobFile);
  }

  /**
   * Moves staged layers and blobs into the store and records the images: the last step, under the
   * lock. On any failure everything moved is moved back.
   */
  private async commit(staged: Staged, pending: StagedImage[]): Promise<ImageRecord[]> {
    // Flush the unpacked files before anything points at them.
    await syncFilesystem(staged.dir);
    return this.lock.run(async () => {
      const moved: Array<{ from: string; to: string }> = [];
      const links: string[] = [];
      const newLayers: LayerRecord[] = [];
      const next = cloneRecords(this.images);
      const now = new Date().toISOString();
      const committed: ImageRecord[] = [];
      try {
        for (const [diffId, layer] of staged.layers) {
          if (this.layers.has(diffId)) continue; // a concurrent load brought it in meanwhile
          const dest = this.layerDir(diffId);
          await rename(layer.dir, dest);
          moved.push({ from: layer.dir, to: dest });
          await this.ensureLink(diffId);
          links.push(join(this.linksDir, this.linkName(diffId)));
          newLayers.push(layer.record);
        }
        for (const image of pending) {
          for (const m of [{ digest: image.manifestDigest }, ...(image.extraManifests ?? [])]) {
            if (!staged.blobs.has(m.digest)) throw new InternalError(`manifest ${m.digest} was not staged`);
          }
        }
        for (const [digest, file] of staged.blobs) {
          const dest = this.blobPath(digest);
          if (await exists(dest)) continue;
          await rename(file, dest); // content already flushed by syncFilesystem above
          moved.push({ from: file, to: dest });
        }
        await fsyncPath(this.layersDir);
        await fsyncPath(this.blobsDir);

        for (const image of pending) {
          let record = next.get(image.id);
          const extras = image.extraManifests ?? [];
          if (record) {
            // Podman keeps the first digest as the image's Digest; the new manifest becomes current.
            for (const m of [{ digest: image.manifestDigest, size: image.manifestSize }, ...extras]) {
              if (!record.digests.includes(m.digest)) record.digests.push(m.digest);
              record.manifestSizes[m.digest] = m.size;
            }
            record.manifestDigest = image.manifestDigest;
            record.manifestType = image.manifestType;
            record.manifestSize = image.manifestSize;
            record.annotations = image.annotations;
          } else {
            record = {
              id: image.id,
              names: [],
              namesHistory: [],
              digest: image.manifestDigest,
              digests: [image.manifestDigest, ...extras.map((m) => m.digest).filter((d) => d !== image.manifestDigest)],
              manifestSizes: Object.fromEntries([...extras.map((m) => [m.digest, m.size]), [image.manifestDigest, image.manifestSize]]),
              manifestDigest: image.manifestDigest,
              manifestType: image.manifestType,
              manifestSize: image.manifestSize,
              annotations: image.annotations,
              created: image.config.created ?? now,
              configSize: image.configBytes.length,
              config: image.config,
              layers: [...image.config.rootfs.diff_ids],
              storedAt: now,
            };
            next.set(image.id, record);
          }
          for (const name of image.names) assignName(next, record, name);
          committed.push(record);
        }
        await this.persist(next);
      } catch (err) {
        for (const link of links) await rm(link, { force: true }).catch(() => undefined);
        for (const m of moved.reverse()) {
          await rename(m.to, m.from).catch(async () => removeTree(m.to));
        }
        throw err;
      }
      for (const l of newLayers) this.layers.set(l.diffId, l);
      this.images = next;
      return committed.map((r) => structuredClone(next.get(r.id)!));
    });
  }

  // ---------------------------------------------------------------------------------------------
  // staging for transfers (src/image/pull.ts): the same staging and commit path as a load

  /** A fresh staging area; the caller must `closeStaging` it whatever happens. */
  async openStaging(prefix: string): Promise<Staged> {
    return this.newStaging(prefix);
  }

  /** Removes the staging area and releases what it pinned (after a commit, or instead of one). */
  async closeStaging(staged: Staged): Promise<void> {
    await this.dropStaging(staged);
  }

  /**
   * True when the layer need not be brought in: staged already, or in the store, then pinned until
   * the staging area is closed, so that a concurrent removal cannot take it away before the commit.
   */
  reuseLayer(staged: Staged, diffId: string): boolean {
    if (staged.layers.has(diffId) || staged.pinnedLayers.includes(diffId)) return true;
    if (this.layers.has(diffId)) {
      // Checked and pinned in one synchronous step: a removal cannot slip in between.
      this.pin(`layer:${diffId}`);
      staged.pinnedLayers.push(diffId);
      return true;
    }
    return false;
  }

  /** Stages a small blob (config, manifest) known to have `digest`; refuses bytes that do not. */
  async stageBlob(staged: Staged, digest: string, bytes: Buffer): Promise<void> {
    const actual = sha256Digest(bytes);
    if (actual !== digest) throw new BadRequestError(`blob ${digest}: Digest did not match, expected ${digest}, got ${actual}`);
    staged.blobs.set(digest, await this.stageBytes(staged, bytes));
  }

  /**
   * Brings in a layer from a stream in one pass: each chunk is hashed, written to the staged blob
   * file and fed to the unpacker. When the stream ends, its digest and size must be the manifest's
   * and the unpacked content's digest the config's diff ID; otherwise the layer is refused (the
   * caller drops the staging area, so nothing stays behind). If unpacking fails first, the rest of
   * the stream (at most the declared size) is still read so that a corrupt blob is reported as a
   * digest mismatch rather than as whatever the unpacker tripped over.
   */
  async stageLayer(staged: Staged, input: AsyncIterable<Buffer>, layer: IncomingLayer, onBytes?: (bytes: number) => void): Promise<void> {
    const dir = join(staged.dir, `layer-${digestHex(layer.diffId)}`);
    await mkdir(dir, { mode: 0o700 });
    const diff = join(dir, 'diff');
    await mkdir(diff, { mode: 0o755 });
    const blobFile = join(staged.dir, `blob-${digestHex(layer.blobDigest)}`);

    const feed = new PassThrough({ highWaterMark: 1024 * 1024 });
    feed.on('error', () => undefined); // the unpacker destroys it on failure; its error is reported from there
    const unpacking = unpackLayer(feed, diff, dir, layer.what, this.logger);
    unpacking.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled
    const counter = new Sha256Counter();
    const fh = await openFile(blobFile, 'wx', 0o600);
    try {
      for await (const chunk of input) {
        counter.update(chunk);
        if (layer.blobSize !== undefined && counter.bytes > layer.blobSize) {
          throw new BadRequestError(`${layer.what}: the blob is larger than the ${layer.blobSize} bytes its manifest declares`);
        }
        await fh.write(chunk);
        onBytes?.(counter.bytes);
        if (!feed.destroyed && !feed.write(chunk)) await drainedOrClosed(feed);
      }
    } catch (err) {
      feed.destroy();
      await unpacking.catch(() => undefined);
      throw err;
    } finally {
      await fh.close();
    }
    const digest = counter.digest();
    if (digest !== layer.blobDigest) {
      feed.destroy();
      await unpacking.catch(() => undefined);
      throw new BadRequestError(`${layer.what}: Digest did not match, expected ${layer.blobDigest}, got ${digest}`);
    }
    if (layer.blobSize !== undefined && counter.bytes !== layer.blobSize) {
      feed.destroy();
      await unpacking.catch(() => undefined);
      throw new BadRequestError(`${layer.what}: the blob has ${counter.bytes} bytes, its manifest declares ${layer.blobSize}`);
    }
    feed.end();
    const result = await unpacking;
    if (result.diffId !== layer.diffId) {
      throw new BadRequestError(`${layer.what}: digest mismatch: the image config expects ${layer.diffId}, the layer's content is ${result.diffId}`);
    }
    const record: LayerRecord = {
      diffId: layer.diffId,
      size: result.size,
      blob: { digest, size: counter.bytes, compression: result.compression === 'gzip' ? 'gzip' : 'none' },
    };
    await writeFile(join(dir, 'layer.json'), JSON.stringify(record));
    staged.layers.set(layer.diffId, { dir, record });
    staged.blobs.set(digest, blobFile);
    if (record.blob.compression === 'gzip') this.rememberCompressedForm(layer.diffId, digest, counter.bytes);
  }

  /** Commits staged images (names move to them); returns their records. */
  async commitStaged(staged: Staged, images: StagedImage[]): Promise<ImageRecord[]> {
    return this.commit(staged, images);
  }

  // ---------------------------------------------------------------------------------------------
  // reading an image for a push (src/image/push.ts)

  /** Opens an image's blobs for reading; they stay pinned until `release`. */
  async openForTransfer(nameOrId: string): Promise<TransferSource> {
    const found = this.lookup(nameOrId);
    if (!found) throw noSuchImage(nameOrId);
    const record = structuredClone(found.record);
    const pins: string[] = [];
    const pin = (key: string): void => {
      this.pin(key);
      pins.push(key);
    };
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      this.releasePins(pins);
    };
    try {
      pin(`blob:sha256:${record.id}`);
      pin(`blob:${record.manifestDigest}`);
      const layers = record.layers.map((diffId) => {
        const layer = this.layers.get(diffId);
        if (!layer) throw new InternalError(`image ${record.id}: layer ${diffId} is missing from the store`);
        pin(`layer:${diffId}`);
        return { ...structuredClone(layer), blobPath: this.blobPath(layer.blob.digest) };
      });
      const bytes = await readFile(this.blobPath(record.manifestDigest));
      return {
        record,
        resolvedName: found.resolvedName,
        configPath: this.blobPath(`sha256:${record.id}`),
        manifest: { bytes, digest: record.manifestDigest, mediaType: record.manifestType },
        layers,
        release,
      };
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Records that `digest` (`size` bytes) is a compressed form of layer `diffId`. */
  rememberCompressedForm(diffId: string, digest: string, size: number): void {
    if (digest === diffId) return;
    const forms = this.compressedForms.get(diffId) ?? [];
    if (forms.some((f) => f.digest === digest)) return;
    forms.unshift({ digest, size });
    this.compressedForms.set(diffId, forms.slice(0, 8));
  }

  /** Compressed forms of a layer seen so far, most recent first. */
  compressedFormsOf(diffId: string): Array<{ digest: string; size: number }> {
    return [...(this.compressedForms.get(diffId) ?? [])];
  }

  // ---------------------------------------------------------------------------------------------
  // import

  /** Creates a single-layer image from a root filesystem tarball (plain or gzip), like `podman import`. */
  async importRootfs(input: Readable, options: ImportOptions = {}): Promise<ImageRecord> {
    const containerConfig: ContainerConfig = applyChanges({}, options.changes ?? []);
    let reference: string | undefined;
    if (options.reference) {
      reference = this.normalizeNewName(options.reference);
    }
    const staged = await this.newStaging('import-');
    try {
      // Keep the tarball as received (that is the layer blob), hashing it on the way.
      const blobFile = join(staged.dir, 'layer-blob');
      const counter = new Sha256Counter();
      const { head, stream } = await peek(input);
      const compression = detectCompression(head);
      if (compression !== 'gzip' && compression !== 'none') {
        stream.destroy();
        throw new BadRequestError(`tarball is ${compression}-compressed: only gzip and uncompressed tar are supported`);
      }
      const fh = await openFile(blobFile, 'wx', 0o600);
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          counter.update(chunk);
          await fh.write(chunk);
        }
      } catch (err) {
        throw asArchiveError(err, 'tarball');
      } finally {
        await fh.close();
      }
      if (counter.bytes === 0) throw new BadRequestError('tarball is empty');

      const unpackDir = join(staged.dir, 'probe');
      await mkdir(unpackDir);
      await mkdir(join(unpackDir, 'diff'));
      const probe = await unpackLayer(createReadStream(blobFile), join(unpackDir, 'diff'), staged.dir, 'tarball', this.logger);
      const diffId = probe.diffId;
      if (this.layers.has(diffId)) {
        this.pin(`layer:${diffId}`);
        staged.pinnedLayers.push(diffId);
      } else {
        const record: LayerRecord = { diffId, size: probe.size, blob: { digest: counter.digest(), size: counter.bytes, compression } };
        await writeFile(join(unpackDir, 'layer.json'), JSON.stringify(record));
        staged.layers.set(diffId, { dir: unpackDir, record });
        staged.blobs.set(record.blob.digest, blobFile);
      }

      const created = options.created ?? nowRfc3339Nano();
      const config: ImageConfigFile = {
        created,
        architecture: options.architecture || goArch(),
        ...(options.variant ? { variant: options.variant } : {}),
        os: options.os || 'linux',
        config: containerConfig,
        rootfs: { type: 'layers', diff_ids: [diffId] },
        history: [
          {
            created,
            created_by: `/bin/sh -c #(nop) ADD file:${digestHex(diffId)} in /`,
            comment: options.message || 'imported from tarball',
          },
        ],
      };
      const configBytes = Buffer.from(JSON.stringify(config));
      const configDigest = sha256Digest(configBytes);
      const layerBlob = this.layers.get(diffId)?.blob ?? staged.layers.get(diffId)!.record.blob;
      // The manifest the tarball transport builds (OCI, no mediaType field).
      const manifest = {
        schemaVersion: 2,
        config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length },
        layers: [{ mediaType: layerBlob.compression === 'gzip' ? MediaType.ociLayerGzip : MediaType.ociLayer, digest: layerBlob.digest, size: layerBlob.size }],
      };
      const manifestBytes = Buffer.from(JSON.stringify(manifest));
      const manifestDigest = sha256Digest(manifestBytes);
      staged.blobs.set(configDigest, await this.stageBytes(staged, configBytes));
      staged.blobs.set(manifestDigest, await this.stageBytes(staged, manifestBytes));

      const pending: PendingImage = {
        id: digestHex(configDigest),
        configBytes,
        config,
        manifestDigest,
        manifestType: MediaType.ociManifest,
        manifestSize: manifestBytes.length,
        annotations: {},
        layers: [],
        names: reference ? [reference] : [],
        reportNames: [],
      };
      const [record] = await this.commit(staged, [pending]);
      this.logger.info({ id: record!.id, name: reference }, 'image imported');
      return record!;
    } finally {
      await this.dropStaging(staged);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // names

  /** Normalises a name for tagging; refuses digests and `sha256:` forms (as Podman does). */
  private normalizeNewName(name: string): string {
    if (name.startsWith('sha256:')) throw new BadRequestError(`${name}: tag by digest not supported`);
    let normalized: string;
    try {
      normalized = normalizeName(name);
    } catch (err) {
      throw new BadRequestError(`normalizing name "${name}": ${(err as Error).message}`);
    }
    if (parseReference(normalized).digest !== undefined) throw new BadRequestError(`${name}: tag by digest not supported`);
    return normalized;
  }

  /** Adds the name `repo:tag` to an image (the name moves if another image had it). Returns the stored name. */
  async tag(nameOrId: string, repo: string, tag = 'latest'): Promise<string> {
    if (!repo) throw new BadRequestError('repo parameter is required to tag an image');
    const name = this.normalizeNewName(`${repo}:${tag || 'latest'}`);
    return this.lock.run(async () => {
      const record = this.lookup(nameOrId)?.record;
      if (!record) throw noSuchImage(nameOrId);
      const next = cloneRecords(this.images);
      assignName(next, next.get(record.id)!, name);
      await this.persist(next);
      this.images = next;
      this.logger.info({ id: record.id, name }, 'image tagged');
      return name;
    });
  }

  /**
   * Removes the name `repo:tag` from an image, or every name when `repo` is absent.
   * Returns the names removed.
   */
  async untag(nameOrId: string, repo?: string, tag?: string): Promise<string[]> {
    if (!repo && tag) throw new BadRequestError('repo parameter is required to tag an image');
    return this.lock.run(async () => {
      const record = this.lookup(nameOrId)?.record;
      if (!record) throw noSuchImage(nameOrId);
      const next = cloneRecords(this.images);
      const target = next.get(record.id)!;
      let names: string[];
      if (repo) {
        let name: string;
        try {
          name = normalizeName(`${repo}:${tag || 'latest'}`);
        } catch (err) {
          throw new BadRequestError(`normalizing name "${repo}:${tag || 'latest'}": ${(err as Error).message}`);
        }
        if (!target.names.includes(name)) throw new PodserveError(500, 'tag not known', `${name}: tag not known`);
        names = [name];
      } else {
        names = [...target.names];
      }
      target.names = target.names.filter((n) => !names.includes(n));
      await this.persist(next);
      this.images = next;
      this.logger.info({ id: record.id, names }, 'image untagged');
      return names;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // removal

  /**
   * `rmi` of one image, Podman style: a name of an image with several names is only untagged;
   * otherwise the image goes, with its dangling parents (unless noPrune). Refuses (409) an image
   * containers use unless forced; refuses (500) removal by ID of an image with several names
   * unless forced.
   */
  async remove(nameOrId: string, options: RemoveOptions = {}): Promise<RemoveReport> {
    const report = await this.removeMany([nameOrId], options);
    if (report.errors.length > 0) throw report.errors[0];
    return { untagged: report.untagged, deleted: report.deleted };
  }

  /** Removes several images; errors are collected per name (as the batch endpoint reports them). */
  async removeMany(namesOrIds: readonly string[], options: RemoveOptions = {}): Promise<RemoveReport & { errors: PodserveError[] }> {
    return this.lock.run(async () => {
      const result: RemoveReport & { errors: PodserveError[] } = { untagged: [], deleted: [], errors: [] };
      for (const nameOrId of namesOrIds) {
        const found = this.lookup(nameOrId);
        if (!found) {
          if (!options.ignore) result.errors.push(noSuchImage(nameOrId));
          continue;
        }
        const next = cloneRecords(this.images);
        const report: RemoveReport = { untagged: [], deleted: [] };
        try {
          await this.removeRecursive(next, found.record.id, found.resolvedName, options, report, new Map());
          await this.persist(next);
          this.images = next;
          result.untagged.push(...report.untagged);
          result.deleted.push(...report.deleted);
        } catch (err) {
          result.errors.push(err instanceof PodserveError ? err : new InternalError((err as Error).message));
        }
      }
      if (result.deleted.length > 0) await this.collectGarbage();
      if (result.untagged.length + result.deleted.length > 0) this.logger.info({ untagged: result.untagged, deleted: result.deleted }, 'images removed');
      return result;
    });
  }

  private async removeRecursive(
    next: Map<string, ImageRecord>,
    id: string,
    referencedBy: string,
    options: RemoveOptions,
    report: RemoveReport,
    sizes: Map<string, number>,
  ): Promise<void> {
    const record = next.get(id);
    if (!record) return;
    const numNames = record.names.length;
    if (referencedBy !== '' && numNames > 1) {
      const byId = id.startsWith(referencedBy);
      const byDigest = referencedBy.startsWith('sha256:');
      if (!options.force && (byId || byDigest)) {
        throw new InternalError(
          `unable to delete image "${id}" by ${byId ? 'ID' : 'digest'} with more than one tag ([${record.names.join(' ')}]): please force removal`,
        );
      }
      if (!byId && !byDigest) {
        let name: string;
        try {
          name = normalizeName(referencedBy);
        } catch (err) {
          throw new BadRequestError(`normalizing name "${referencedBy}": ${(err as Error).message}`);
        }
        if (!record.names.includes(name)) throw new PodserveError(500, 'tag not known', `${name}: tag not known`);
        record.names = record.names.filter((n) => n !== name);
        report.untagged.push(referencedBy);
        if (record.names.length > 0) return;
      }
    }

    const users = options.inUse?.(id);
    if (users === true || (Array.isArray(users) && users.length > 0)) {
      if (options.force && options.removeContainers) await options.removeContainers(id);
      const still = options.inUse?.(id);
      if (!options.force || still === true || (Array.isArray(still) && still.length > 0)) {
        const by = Array.isArray(users) ? users[0] : undefined;
        throw new ConflictError(
          Sentinel.imageInUse,
          `${by ? `image used by ${by}: ` : ''}${Sentinel.imageInUse}: consider listing external containers and force-removing image`,
        );
      }
    }

    const index = new RelationIndex(next.values());
    const hasChildren = index.hasChildren(record);
    const parent = index.parentOf(record);
    sizes.set(id, this.sizeOfRecord(record));
    next.delete(id);
    report.untagged.push(...record.names);
    if (!hasChildren) report.deleted.push(id);
    if (options.noPrune || !parent) return;
    const afterIndex = new RelationIndex(next.values());
    if (afterIndex.isDangling(parent)) await this.removeRecursive(next, parent.id, '', options, report, sizes);
  }

  private sizeOfRecord(record: ImageRecord): number {
    let total = record.configSize + record.manifestSize;
    for (const size of Object.values(record.manifestSizes)) total += size;
    for (const l of record.layers) total += this.layers.get(l)?.size ?? 0;
    return total;
  }

  /**
   * Removes dangling images (or, with `all`, every image no container uses), repeating until
   * nothing more goes, as `podman image prune` does. Reports each removed image with its size.
   */
  async prune(options: PruneOptions = {}): Promise<PruneReportEntry[]> {
    return this.lock.run(async () => {
      const removed: PruneReportEntry[] = [];
      for (;;) {
        const index = new RelationIndex(this.images.values());
        const victims = [...this.images.values()].filter((r) => {
          const users = options.inUse?.(r.id);
          if (users === true || (Array.isArray(users) && users.length > 0)) return false;
          if (!options.all && !index.isDangling(r)) return false;
          return options.filter ? options.filter(this.detailsOf(r, index)) : true;
        });
        if (victims.length === 0) break;
        const next = cloneRecords(this.images);
        let progress = false;
        for (const victim of victims) {
          if (!next.has(victim.id)) continue;
          const report: RemoveReport = { untagged: [], deleted: [] };
          const sizes = new Map<string, number>();
          await this.removeRecursive(next, victim.id, '', { inUse: options.inUse }, report, sizes);
          for (const [id, size] of sizes) removed.push({ id, size });
          progress ||= sizes.size > 0;
        }
        await this.persist(next);
        this.images = next;
        if (!progress) break;
      }
      if (removed.length > 0) {
        await this.collectGarbage();
        this.logger.info({ removed: removed.map((r) => r.id) }, 'images pruned');
      }
      return removed;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // save

  /**
   * Streams the images as a docker-archive (several images allowed) or oci-archive (one image)
   * into `out`. Images named by name carry that name in the archive; by ID they carry none.
   */
  async save(nameOrIds: readonly string[], format: ArchiveFormat, out: Writable): Promise<void> {
    if (nameOrIds.length === 0) throw new BadRequestError('no image specified for saving images');
    if (format === 'oci-archive' && nameOrIds.length > 1) {
      throw new BadRequestError(`unsupported format "${format}" for saving multiple images (only docker-archive)`);
    }
    const pins: string[] = [];
    const images: SaveImage[] = [];
    try {
      const seenNames = new Set<string>();
      const byId = new Map<string, SaveImage>();
      for (const nameOrId of nameOrIds) {
        const found = this.lookup(nameOrId);
        if (!found) throw noSuchImage(nameOrId);
        const { record, resolvedName } = found;
        if (seenNames.has(resolvedName)) continue;
        seenNames.add(resolvedName);
        let image = byId.get(record.id);
        if (!image) {
          image = this.saveImageOf(record, pins);
          byId.set(record.id, image);
          images.push(image);
        }
        if (!record.id.startsWith(resolvedName.replace(/^sha256:/, ''))) {
          try {
            const ref = parseReference(resolvedName);
            if (ref.tag !== undefined) image.tags.push(`${repositoryName(ref)}:${ref.tag}`);
          } catch {
            // not a name: nothing to record
          }
        }
      }
      if (format === 'docker-archive') {
        await writeDockerArchive(images, (img) => readFile(img.configPath), out);
      } else {
        const image = images[0]!;
        // The stored manifest is written back verbatim only if it lists exactly the blobs we hold
        // (a layer shared with an image that came in another form keeps its first blob).
        if (image.ociManifest) {
          const { value: manifest } = await readJsonFile<OciManifest>(image.ociManifest.path, 'stored manifest');
          const same =
            manifest.config?.digest === `sha256:${image.id}` &&
            manifest.layers?.length === image.layers.length &&
            manifest.layers.every((l, i) => l.digest === image.layers[i]!.blobDigest);
          if (!same) delete image.ociManifest;
        }
        await writeOciArchive(image, (p) => readFile(p), out);
      }
    } finally {
      this.releasePins(pins);
    }
  }

  private saveImageOf(record: ImageRecord, pins: string[]): SaveImage {
    const pin = (key: string): void => {
      this.pin(key);
      pins.push(key);
    };
    pin(`blob:sha256:${record.id}`);
    pin(`blob:${record.manifestDigest}`);
    const layers = record.layers.map((diffId) => {
      const layer = this.layers.get(diffId);
      if (!layer) throw new InternalError(`image ${record.id}: layer ${diffId} is missing from the store`);
      pin(`layer:${diffId}`);
      return {
        diffId,
        size: layer.size,
        blobPath: this.blobPath(layer.blob.digest),
        blobDigest: layer.blob.digest,
        blobSize: layer.blob.size,
        compression: layer.blob.compression,
      };
    });
    const image: SaveImage = {
      id: record.id,
      configPath: this.blobPath(`sha256:${record.id}`),
      configSize: record.configSize,
      layers,
      tags: [],
    };
    if (record.manifestType === MediaType.ociManifest) {
      image.ociManifest = {
        path: this.blobPath(record.manifestDigest),
        digest: record.manifestDigest,
        size: record.manifestSize,
        mediaType: record.manifestType,
      };
    }
    return image;
  }

  // ---------------------------------------------------------------------------------------------
  // container root filesystems

  /**
   * Mounts the image's layers as overlayfs under `containerDir` (upper/, work/, merged/) and
   * returns the merged directory. Idempotent.
   */
  async mountRootfs(imageId: string, containerDir: string): Promise<string> {
    const paths = rootfsPaths(resolvePath(containerDir));
    return this.lock.run(async () => {
      const record = this.images.get(imageId) ?? this.lookup(imageId)?.record;
      if (!record) throw noSuchImage(imageId);
      const lowers = [...record.layers].reverse().map((l) => this.linkName(l));
      if (lowers.length === 0) lowers.push('../empty');
      await mountOverlay(this.linksDir, lowers, paths);
      return paths.merged;
    });
  }

  async unmountRootfs(containerDir: string): Promise<void> {
    await unmountOverlay(rootfsPaths(resolvePath(containerDir)).merged);
  }

  async isMounted(containerDir: string): Promise<boolean> {
    return isMountPoint(rootfsPaths(resolvePath(containerDir)).merged);
  }
}
