/**
 * Parent/child relations between images, decided the way Podman's libimage does: a parent's diff
 * IDs are a prefix of the child's, the child has exactly one more history entry, and the shared
 * history entries are equal. Indexed by layer chain so list operations stay linear.
 */
import type { HistoryEntry, ImageRecord } from './types.js';

function sameHistoryEntry(a: HistoryEntry, b: HistoryEntry): boolean {
  return (
    (a.created ?? '') === (b.created ?? '') &&
    (a.created_by ?? '') === (b.created_by ?? '') &&
    (a.author ?? '') === (b.author ?? '') &&
    (a.comment ?? '') === (b.comment ?? '') &&
    Boolean(a.empty_layer) === Boolean(b.empty_layer)
  );
}

export function areParentAndChild(parent: ImageRecord, child: ImageRecord): boolean {
  const p = parent.layers;
  const c = child.layers;
  if (p.length > c.length) return false;
  for (let i = 0; i < p.length; i++) if (p[i] !== c[i]) return false;
  const ph = parent.config.history ?? [];
  const ch = child.config.history ?? [];
  if (ph.length + 1 !== ch.length) return false;
  for (let i = 0; i < ph.length; i++) if (!sameHistoryEntry(ph[i]!, ch[i]!)) return false;
  return true;
}

const chainKey = (layers: readonly string[]): string => layers.join(',');

export class RelationIndex {
  /** Images by their full layer chain. */
  private readonly byChain = new Map<string, ImageRecord[]>();
  /** Images by their layer chain minus the top layer. */
  private readonly byParentChain = new Map<string, ImageRecord[]>();

  constructor(images: Iterable<ImageRecord>) {
    for (const img of images) {
      push(this.byChain, chainKey(img.layers), img);
      if (img.layers.length > 0) push(this.byParentChain, chainKey(img.layers.slice(0, -1)), img);
    }
  }

  /** Images whose layer chain is exactly `layers` (store order). */
  withChain(layers: readonly string[]): ImageRecord[] {
    return this.byChain.get(chainKey(layers)) ?? [];
  }

  parentOf(child: ImageRecord): ImageRecord | undefined {
    const candidates = [...this.withChain(child.layers)];
    if (child.layers.length > 0) candidates.push(...this.withChain(child.layers.slice(0, -1)));
    return candidates.find((p) => p.id !== child.id && areParentAndChild(p, child));
  }

  hasChildren(parent: ImageRecord): boolean {
    const candidates = [...this.withChain(parent.layers)];
    // Images without layers are only related to other images without layers (as in libimage).
    if (parent.layers.length > 0) candidates.push(...(this.byParentChain.get(chainKey(parent.layers)) ?? []));
    return candidates.some((c) => c.id !== parent.id && areParentAndChild(parent, c));
  }

  isDangling(img: ImageRecord): boolean {
    return img.names.length === 0 && !this.hasChildren(img);
  }

  isIntermediate(img: ImageRecord): boolean {
    return img.names.length === 0 && this.hasChildren(img);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}
