/**
 * A container's root filesystem: an overlayfs mount of the image's layers (read-only, top first)
 * under a per-container upper and work directory. Mounting goes through util-linux `mount`.
 * Lower directories are given relative to a directory of short links, run as the mount's cwd, so
 * the option string stays far below the kernel's one-page limit even for images with many layers.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InternalError } from '../errors.js';
import { ensureDir, runTool } from './fsutil.js';

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
  const options = `lowerdir=${lowerLinks.join(':')},upperdir=${paths.upper},workdir=${paths.work}`;
  try {
    await runTool('mount', ['-t', 'overlay', 'overlay', '-o', options, paths.merged], { cwd: linkDir });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new InternalError(`mounting overlay at ${paths.merged}: ${stderr.trim() || (err as Error).message}`);
  }
}

/** Unmounts `merged` if mounted; a busy mount is detached lazily (as Podman's storage does). */
export async function unmountOverlay(merged: string): Promise<void> {
  if (!(await isMountPoint(merged))) return;
  try {
    await runTool('umount', [merged]);
  } catch {
    try {
      await runTool('umount', ['-l', merged]);
    } catch (err) {
      if (!(await isMountPoint(merged))) return;
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new InternalError(`unmounting ${merged}: ${stderr.trim() || (err as Error).message}`);
    }
  }
}
