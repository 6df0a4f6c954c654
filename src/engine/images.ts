/**
 * Image operations as the API sees them: the image store plus what only the engine knows (which containers
 * use an image) and the events each operation emits. Reply shapes are re-exported so routes need not reach
 * into src/image.
 */
import type { Readable, Writable } from 'node:stream';
import type { ImageStore, ImportOptions, LoadResult, PruneReportEntry, RemoveReport } from '../image/store.js';
import type { ArchiveFormat, ImageRecord } from '../image/types.js';
import type { ImageDetails } from '../image/inspect.js';
import type { EventBus } from './events.js';
import { PodserveError } from '../errors.js';

export {
  toLibpodImageData,
  toDockerImageInspect,
  toLibpodListEntry,
  toDockerListEntry,
  toHistoryResponse,
  type ImageDetails,
} from '../image/inspect.js';

export class ImageService {
  constructor(
    readonly store: ImageStore,
    private readonly events: EventBus,
    /** Number of containers using an image. */
    private readonly containersUsing: (imageId: string) => number,
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
    result.ids.forEach((id, i) => this.emit('load', { id, names: [] }, result.names[i] ?? id));
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

  /** Pulls from a registry (the registry client lands with issue 3's pull/push work). */
  async pull(reference: string, _opts: { tlsVerify: boolean; progress: (line: string) => void }): Promise<string> {
    throw new PodserveError(
      500,
      `${reference}: image not known locally, and pulling from a registry is not available in this build`,
      'image not known',
    );
  }

  count(): number {
    return this.store.list().length;
  }
}
