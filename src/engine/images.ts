/**
 * Image operations as the API sees them: the image store plus what only the engine knows (which containers
 * use an image) and the events each operation emits. Reply shapes are re-exported so routes need not reach
 * into src/image.
 */
import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { ImageStore, ImportOptions, LoadResult, PruneReportEntry, RemoveReport } from '../image/store.js';
import type { ArchiveFormat, ImageRecord } from '../image/types.js';
import type { ImageDetails } from '../image/inspect.js';
import { pullImage, type PullOptions } from '../image/pull.js';
import { pushImage, type PushOptions, type PushResult } from '../image/push.js';
import type { EventBus } from './events.js';

export {
  toLibpodImageData,
  toDockerImageInspect,
  toLibpodListEntry,
  toDockerListEntry,
  toHistoryResponse,
  type ImageDetails,
} from '../image/inspect.js';
export { parseRegistryAuthHeader, type RegistryAuth, type RegistryCredentials } from '../image/registry.js';
export type { PullOptions, TransferEvent } from '../image/pull.js';
export type { PushOptions, PushResult } from '../image/push.js';

export class ImageService {
  constructor(
    readonly store: ImageStore,
    private readonly events: EventBus,
    /** Number of containers using an image. */
    private readonly containersUsing: (imageId: string) => number,
    private readonly logger?: Logger,
  ) {}

  private emit(status: string, record: Pick<ImageRecord, 'id' | 'names'>, name?: string): void {
    this.events.emit({ type: 'image', status, id: record.id, name: name ?? record.names[0] ?? record.id, attributes: {} });
  }

  resolve(nameOrId: string): ImageRecord {
    return this.store.resolve(nameOrId);
  }

  exists(nameOrId: string): boolean {
    return this.store.exists(nameOrId);
  }

  details(nameOrId: string): ImageDetails {
    return this.store.details(nameOrId, this.containersUsing);
  }

  list(all: boolean): ImageDetails[] {
    return this.store.listDetails({ all, containers: this.containersUsing });
  }

  history(nameOrId: string): ReturnType<ImageStore['history']> {
    return this.store.history(nameOrId);
  }

  async load(input: Readable): Promise<LoadResult> {
    const result = await this.store.load(input);
    // Podman 4.3.1 reports a load as one `loadfromarchive` event per image; podman-remote cannot parse other names.
    result.ids.forEach((id, i) => this.emit('loadfromarchive', { id, names: [] }, result.names[i] ?? id));
    return result;
  }

  async import(input: Readable, opts: ImportOptions): Promise<ImageRecord> {
    const record = await this.store.importRootfs(input, opts);
    this.emit('import', record);
    return record;
  }

  async tag(nameOrId: string, repo: string, tag?: string): Promise<void> {
    const record = this.store.resolve(nameOrId);
    const name = await this.store.tag(nameOrId, repo, tag);
    this.emit('tag', record, name);
  }

  async untag(nameOrId: string, repo?: string, tag?: string): Promise<void> {
    const record = this.store.resolve(nameOrId);
    const names = await this.store.untag(nameOrId, repo, tag);
    for (const name of names) this.emit('untag', record, name);
  }

  async remove(namesOrIds: readonly string[], force: boolean, removeContainers?: (imageId: string) => Promise<void>) {
    const report = await this.store.removeMany(namesOrIds, {
      force,
      inUse: (id: string) => this.containersUsing(id) > 0,
      removeContainers,
    });
    this.emitRemoval(report);
    return report;
  }

  private emitRemoval(report: RemoveReport): void {
    for (const name of report.untagged) this.events.emit({ type: 'image', status: 'untag', id: name, name, attributes: {} });
    for (const id of report.deleted) this.events.emit({ type: 'image', status: 'remove', id, name: id, attributes: {} });
  }

  async prune(all: boolean, filter?: (d: ImageDetails) => boolean): Promise<PruneReportEntry[]> {
    const pruned = await this.store.prune({ all, inUse: (id: string) => this.containersUsing(id) > 0, filter });
    for (const p of pruned) this.events.emit({ type: 'image', status: 'prune', id: p.id, name: p.id, attributes: {} });
    return pruned;
  }

  async save(namesOrIds: readonly string[], format: ArchiveFormat, out: Writable): Promise<void> {
    await this.store.save(namesOrIds, format, out);
  }

  /**
   * Pulls `reference` from its registry (every tag with `allTags`); resolves with the IDs pulled, in
   * order. Emits a 'pull' event per image, or one without ID when the pull fails (as libimage does).
   */
  async pull(reference: string, opts: PullOptions = {}): Promise<string[]> {
    try {
      const pulled = await pullImage(this.store, reference, opts, this.storeLogger());
      for (const p of pulled) this.events.emit({ type: 'image', status: 'pull', id: p.id, name: reference, attributes: {} });
      return pulled.map((p) => p.id);
    } catch (err) {
      this.events.emit({ type: 'image', status: 'pull', id: '', name: reference, attributes: {} });
      throw err;
    }
  }

  /** Pushes the image `nameOrId` to `destination` (a registry reference; defaults to the name); emits 'push'. */
  async push(nameOrId: string, destination: string, opts: PushOptions = {}): Promise<PushResult> {
    const result = await pushImage(this.store, nameOrId, destination || nameOrId, opts, this.storeLogger());
    this.events.emit({ type: 'image', status: 'push', id: result.id, name: destination || nameOrId, attributes: {} });
    return result;
  }

  private storeLogger(): Logger {
    return this.logger ?? this.store.logger;
  }

  count(): number {
    return this.store.list().length;
  }
}
