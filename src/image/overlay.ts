/**
 * A container's root filesystem: an overlayfs mount of the image's layers (read-only, top first)
 * under a per-container upper and work directory. Mounting and unmounting are system calls made from the
 * native addon on the thread pool (a spawned util-linux `mount` would stall the event loop for its fork and
 * exec, on every container start and removal). The kernel takes at most one page of options: an image with
 * so many layers that their paths do not fit goes through `mount` run in the directory of short layer
 * links, with the lower directories given relative to it.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../errors.js';
import { ensureDir, runTool } from './fsutil.js';
import { nativeAddonIfBuilt } from '../native.js';

export interface RootfsPaths {
  upper: string;
  work: string;
  merged: string;
}

export function rootfsPaths(containerDir: string): RootfsPaths {
  return { upper: join(containerDir, 'upper'), work: join(containerDir, 'work'), merged: join(containerDir, 'merged') };
}

/** Decodes the octal escapes (\040 for space…) of /proc/self/mountinfo fields. */
function unescapeMountField(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

export async function isMountPoint(path: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  for (const line of info.split('\n')) {
    const field = line.split(' ')[4];
    if (field !== undefined && unescapeMountField(field) === path) return true;
  }
  return false;
}

/**
 * Mounts overlayfs at `paths.merged`. `lowerLinks` are names inside `linkDir` (top layer first).
 * Does nothing when `merged` is already a mount point.
 */
export async function mountOverlay(linkDir: string, lowerLinks: readonly string[], paths: RootfsPaths): Promise<void> {
  if (await isMountPoint(paths.merged)) return;
  await ensureDir(paths.upper, 0o755);
  await ensureDir(paths.work, 0o700);
  await ensureDir(paths.merged, 0o755);
  if (lowerLinks.length === 0) throw new InternalError('overlay mount needs at least one lower directory');
  for (const p of [paths.upper, paths.work]) {
    if (/[,:]/.test(p)) throw new InternalError(`overlay directory "${p}" contains "," or ":"`);
  }
  const tail = `,upperdir=${paths.upper},workdir=${paths.work}`;
  const absolute = `lowerdir=${lowerLinks.map((l) => join(linkDir, l)).join(':')}${tail}`;
  const native = nativeAddonIfBuilt();
  try {
    if (native && absolute.length < MAX_MOUNT_OPTIONS) {
      await native.mount('overlay', paths.merged, 'overlay', absolute);
    } else {
      await runTool('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lowerLinks.join(':')}${tail}`, paths.merged], { cwd: linkDir });
    }
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new InternalError(`mounting overlay at ${paths.merged}: ${stderr.trim() || (err as Error).message}`);
  }
}

/** The kernel copies mount options into one page, NUL included. */
const MAX_MOUNT_OPTIONS = 4095;

/** Without the native addon the util-linux tools do the work. */
async function unmount(target: string, detach: boolean): Promise<void> {
  const native = nativeAddonIfBuilt();
  if (native) await native.unmount(target, detach);
  else await runTool('umount', detach ? ['-l', target] : [target]);
}

/** Unmounts `merged` if mounted; a busy mount is detached lazily (as Podman's storage does). */
export async function unmountOverlay(merged: string): Promise<void> {
  if (!(await isMountPoint(merged))) return;
  try {
    await unmount(merged, false);
  } catch {
    try {
      await unmount(merged, true);
    } catch (err) {
      if (!(await isMountPoint(merged))) return;
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new InternalError(`unmounting ${merged}: ${stderr.trim() || (err as Error).message}`);
    }
  }
}
