/**
 * podserve's native addon (native/*.c, built by node-gyp into build/Release/podserve.node), loaded on first use:
 * conmon's SEQPACKET attach socket (src/oci/seqpacket.ts), mount(2)/umount2(2) (src/image/overlay.ts) and giving
 * memory back when idle (src/memory.ts).
 */
import { packagePath, requireOnDemand } from './paths.js';

export interface NativeAddon {
  /** A connected, close-on-exec AF_UNIX SOCK_SEQPACKET socket to `path` (any length). */
  connectSeqpacket(path: string): number;
  /** Every packet queued on `fd`, payloads back to back in `buffer` from offset 1; see native/seqpacket.c. */
  recvBatch(fd: number, buffer: Buffer, meta: Int32Array): number;
  /** mount(2) with no flags, on the thread pool. Rejects with `code` (EBUSY, EINVAL…) and `errno`. */
  mount(source: string, target: string, fstype: string, data: string): Promise<void>;
  /** umount2(2), MNT_DETACH when `detach`, on the thread pool. */
  unmount(target: string, detach: boolean): Promise<void>;
  /** malloc_trim; true when the C heap gave pages back (src/memory.ts). */
  trimMemory(): boolean;
  /** V8's LowMemoryNotification, then malloc_trim (src/memory.ts). */
  lowMemory(): boolean;
}

let addon: NativeAddon | undefined;

let addonMissing = false;

/** The addon; throws (code MODULE_NOT_FOUND or ERR_DLOPEN_FAILED) when it was not built. */
export function nativeAddon(): NativeAddon {
  addon ??= requireOnDemand(packagePath('build/Release/podserve.node')) as NativeAddon;
  return addon;
}

/** The addon, or undefined when it was not built, for callers that have a slower way without it. */
export function nativeAddonIfBuilt(): NativeAddon | undefined {
  if (addonMissing) return undefined;
  try {
    return nativeAddon();
  } catch {
    addonMissing = true;
    return undefined;
  }
}
