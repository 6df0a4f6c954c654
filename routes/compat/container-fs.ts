/**
 * docker cp and export over a container's root filesystem: path resolution that keeps symlinks inside the
 * container's root, Docker's path-stat header, tar archives of a path (or the whole rootfs), and extraction of
 * a tar into a directory. The caller provides the root (the container's mount namespace through
 * /proc/<pid>/root for a running container, or its mounted rootfs) and keeps it available meanwhile.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join, posix } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Writable } from 'node:stream';
import tar from 'tar-stream';
import { BadRequestError, NotFoundError, PodserveError } from '../../src/errors.js';

type Pack = ReturnType<typeof tar.pack>;
type Headers = Parameters<Pack['entry']>[0];

const MAX_SYMLINKS = 40;

/** Header with the base64 JSON stat of the path, read by docker cp and podman cp. */
export const PATH_STAT_HEADER = 'X-Docker-Container-Path-Stat';

export interface PathStat {
  name: string;
  size: number;
  /** Go's os.FileMode bits (type bits differ from Unix ones). */
  mode: number;
  mtime: string;
  linkTarget: string;
}

/** ENOENT-style "no such file" as Podman's copier reports it (404 on the archive endpoints). */
export function noSuchPath(path: string): NotFoundError {
  return new NotFoundError('no such file or directory', `"${path}" could not be found on container: no such file or directory`);
}

/**
 * Resolves `path` inside `root` as the container would see it: `..` stops at the root and symlinks (absolute
 * ones relative to the root) are followed, the last component only when `followLast`. Missing components are
 * kept literally. Returns the in-container absolute path.
 */
export async function resolveInRoot(root: string, path: string, followLast: boolean): Promise<string> {
  let pending = path.split('/').filter((p) => p !== '' && p !== '.');
  let resolved: string[] = [];
  let links = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const candidate = [...resolved, part];
    if (pending.length === 0 && !followLast) {
      resolved = candidate;
      break;
    }
    const hostPath = join(root, ...candidate);
    const st = await lstat(hostPath).catch(() => undefined);
    if (st?.isSymbolicLink()) {
      if (++links > MAX_SYMLINKS) throw new BadRequestError(`too many levels of symbolic links resolving "${path}"`);
      const target = await readlink(hostPath);
      if (target.startsWith('/')) resolved = [];
      pending = [...target.split('/').filter((p) => p !== '' && p !== '.'), ...pending];
      continue;
    }
    resolved = candidate;
  }
  return `/${resolved.join('/')}`;
}

/** Go's os.FileMode for a Unix st_mode. */
export function goFileMode(mode: number): number {
  let go = mode & 0o777;
  switch (mode & 0o170000) {
    case 0o040000: go += 2 ** 31; break; // ModeDir
    case 0o120000: go += 2 ** 27; break; // ModeSymlink
    case 0o010000: go += 2 ** 25; break; // ModeNamedPipe
    case 0o140000: go += 2 ** 24; break; // ModeSocket
    case 0o020000: go += 2 ** 26 + 2 ** 21; break; // ModeDevice | ModeCharDevice
    case 0o060000: go += 2 ** 26; break; // ModeDevice
  }
  if (mode & 0o4000) go += 2 ** 23; // setuid
  if (mode & 0o2000) go += 2 ** 22; // setgid
  if (mode & 0o1000) go += 2 ** 20; // sticky
  return go;
}

/** The name docker's client expects as the archive's first path component (Go's SplitPathDirEntry base). */
export function archiveBaseName(path: string): string {
  if (path === '.' || path.endsWith('/.')) return '.';
  const cleaned = posix.normalize(path).replace(/\/+$/, '');
  return cleaned === '' ? '/' : posix.basename(cleaned);
}

/** Where an archive request points: the host path to read, and the stat docker cp shows. */
export interface ArchiveSource {
  hostPath: string;
  stat: PathStat;
  /** lstat of hostPath. */
  lstat: Stats;
}

/**
 * Stats `path` in the container as Docker's archive endpoints do: every component but the last is followed,
 * the last too when the path ends with "/" or "/.". A symlink reports its resolved target as linkTarget.
 */
export async function statInRoot(root: string, path: string): Promise<ArchiveSource> {
  if (!path) throw new BadRequestError('missing `path` parameter', 'missing `path` parameter');
  const absolute = path.startsWith('/') ? path : `/${path}`;
  const followLast = absolute.endsWith('/') || absolute.endsWith('/.');
  const inContainer = await resolveInRoot(root, absolute, followLast);
  const hostPath = join(root, inContainer);
  const st = await lstat(hostPath).catch(() => undefined);
  if (!st) throw noSuchPath(path);
  const linkTarget = st.isSymbolicLink() ? await resolveInRoot(root, inContainer, true) : '';
  return {
    hostPath,
    lstat: st,
    stat: {
      name: archiveBaseName(absolute),
      size: st.size,
      mode: goFileMode(st.mode),
      mtime: st.mtime.toISOString(),
      linkTarget,
    },
  };
}

export function encodePathStat(stat: PathStat): string {
  return Buffer.from(JSON.stringify(stat)).toString('base64');
}

// ------------------------------------------------------------------------------------------ writing tars

function entryDone(pack: Pack, header: Headers, body?: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = body === undefined ? pack.entry(header, (err) => (err ? reject(err) : resolve())) : pack.entry(header, body, (err) => (err ? reject(err) : resolve()));
    sink.on('error', () => undefined); // reported through the callback
  });
}

async function addFile(pack: Pack, header: Headers, hostPath: string): Promise<void> {
  let settle!: (err?: Error | null) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  done.catch(() => undefined);
  const sink = pack.entry(header, (err) => settle(err));
  sink.on('error', () => undefined);
  try {
    await pipeline(createReadStream(hostPath), sink as unknown as Writable);
  } catch (err) {
    sink.destroy(err as Error);
    throw err;
  }
  await done;
}

function devNumbers(rdev: number): { devmajor: number; devminor: number } {
  const major = Math.floor(rdev / 256) & 0xfff;
  const minor = (rdev & 0xff) | (Math.floor(rdev / 4096) & 0xfff00);
  return { devmajor: major, devminor: minor };
}

/** Adds `hostPath` (and, for a directory, everything below it) to `pack` under `name`. */
async function addTree(pack: Pack, hostPath: string, name: string, st: Stats, hardlinks: Map<string, string>): Promise<void> {
  if (pack.destroyed) throw new PodserveError(499, 'client went away');
  const base: Headers = { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isDirectory()) {
    await entryDone(pack, { ...base, name: name.endsWith('/') ? name : `${name}/`, type: 'directory' });
    const children = (await readdir(hostPath)).sort();
    for (const child of children) {
      const childPath = join(hostPath, child);
      const childStat = await lstat(childPath).catch(() => undefined);
      if (childStat) await addTree(pack, childPath, name === '' ? child : `${name.replace(/\/$/, '')}/${child}`, childStat, hardlinks);
    }
    return;
  }
  if (st.nlink > 1) {
    const key = `${st.dev}:${st.ino}`;
    const first = hardlinks.get(key);
    if (first !== undefined) return entryDone(pack, { ...base, type: 'link', linkname: first, size: 0 });
    hardlinks.set(key, name);
  }
  if (st.isSymbolicLink()) return entryDone(pack, { ...base, type: 'symlink', linkname: await readlink(hostPath) });
  if (st.isFile()) return addFile(pack, { ...base, type: 'file', size: st.size }, hostPath);
  if (st.isCharacterDevice()) return entryDone(pack, { ...base, type: 'character-device', ...devNumbers(st.rdev) });
  if (st.isBlockDevice()) return entryDone(pack, { ...base, type: 'block-device', ...devNumbers(st.rdev) });
  if (st.isFIFO()) return entryDone(pack, { ...base, type: 'fifo' });
  // Sockets cannot be archived; tar leaves them out too.
}

/**
 * Streams a tar of `source` into `out`, its top entry named `rootName` ("" for the contents of a directory
 * without an entry for the directory itself, as `docker export` writes). Settles when `out` has it all.
 */
export async function writeArchive(out: Writable, hostPath: string, rootName: string): Promise<void> {
  const pack = tar.pack();
  const piping = pipeline(pack as unknown as Readable, out);
  piping.catch(() => undefined);
  try {
    const st = await lstat(hostPath);
    const hardlinks = new Map<string, string>();
    if (rootName === '' && st.isDirectory()) {
      for (const child of (await readdir(hostPath)).sort()) {
        const childPath = join(hostPath, child);
        const childStat = await lstat(childPath).catch(() => undefined);
        if (childStat) await addTree(pack, childPath, child, childStat, hardlinks);
      }
    } else {
      await addTree(pack, hostPath, rootName, st, hardlinks);
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await piping.catch(() => undefined);
    throw err;
  }
  await piping;
}

// ------------------------------------------------------------------------------------------ extracting tars

export interface ExtractOptions {
  /** Keep the archive's uid/gid (docker cp -a); otherwise files belong to root, as Docker does. */
  copyUidGid: boolean;
  /** Refuse to replace a directory with a non-directory or the other way round. */
  noOverwriteDirNonDir: boolean;
}

async function drain(data: Readable): Promise<void> {
  for await (const _chunk of data as AsyncIterable<Buffer>) {
    // not written anywhere
  }
}

/** Entry names are relative to the destination; leading "/" and "./" are dropped, escaping ".." refused. */
function entryPath(name: string): string | undefined {
  const cleaned = posix.normalize(`/${name}`).replace(/\/+$/, '');
  return cleaned === '' || cleaned === '/' ? undefined : cleaned.slice(1);
}

/**
 * Extracts the tar `input` into the directory `destination` (an in-container path) of the root `root`.
 * Symlinks met on the way stay inside the root. Devices are skipped (the daemon cannot create them safely).
 */
export async function extractArchive(root: string, destination: string, input: Readable, opts: ExtractOptions): Promise<void> {
  const destInContainer = await resolveInRoot(root, destination, true);
  const destStat = await lstat(join(root, destInContainer)).catch(() => undefined);
  if (!destStat) throw noSuchPath(destination);
  if (!destStat.isDirectory()) throw new BadRequestError('extraction point is not a directory', 'extraction point is not a directory');

  const directoryTimes: { path: string; mtime: Date }[] = [];
  const extract = tar.extract();
  const handle = async (header: Headers, stream: Readable): Promise<void> => {
    const relative = entryPath(header.name);
    if (relative === undefined) return drain(stream);
    const parent = await resolveInRoot(root, posix.join(destInContainer, posix.dirname(relative)), true);
    const parentHost = join(root, parent);
    await mkdir(parentHost, { recursive: true });
    const target = join(parentHost, posix.basename(relative));
    const existing = await lstat(target).catch(() => undefined);
    const type = header.type ?? 'file';
    const uid = opts.copyUidGid ? (header.uid ?? 0) : 0;
    const gid = opts.copyUidGid ? (header.gid ?? 0) : 0;
    const mode = (header.mode ?? 0o644) & 0o7777;

    if (type === 'directory') {
      await drain(stream);
      if (existing && !existing.isDirectory()) {
        if (opts.noOverwriteDirNonDir) throw new BadRequestError(`cannot overwrite non-directory "${posix.join(destination, relative)}" with directory`);
        await rm(target, { force: true });
      }
      if (!existing?.isDirectory()) await mkdir(target);
      await chmod(target, mode);
      await lchown(target, uid, gid);
      if (header.mtime) directoryTimes.push({ path: target, mtime: header.mtime });
      return;
    }
    if (existing?.isDirectory()) {
      if (opts.noOverwriteDirNonDir) throw new BadRequestError(`cannot overwrite directory "${posix.join(destination, relative)}" with non-directory`);
      await rm(target, { recursive: true, force: true });
    } else if (existing) {
      await unlink(target);
    }
    switch (type) {
      case 'file':
      case 'contiguous-file':
        await pipeline(stream as AsyncIterable<Buffer>, createWriteStream(target, { mode }));
        await chmod(target, mode); // the umask applied at creation
        break;
      case 'symlink':
        await drain(stream);
        await symlink(header.linkname ?? '', target);
        break;
      case 'link': {
        await drain(stream);
        const linked = entryPath(header.linkname ?? '');
        if (linked === undefined) throw new BadRequestError(`invalid hard link target "${header.linkname ?? ''}"`);
        await link(join(root, await resolveInRoot(root, posix.join(destInContainer, linked), false)), target);
        break;
      }
      default:
        return drain(stream);
    }
    await lchown(target, uid, gid);
    if (header.mtime) await lutimes(target, header.mtime, header.mtime);
  };

  let sourceError: unknown;
  input.on('error', (err) => {
    sourceError = err;
    extract.destroy(err);
  });
  input.pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) await handle(entry.header, entry as unknown as Readable);
  } catch (err) {
    input.destroy();
    extract.destroy();
    throw sourceError ?? err;
  }
  // Directory times last: writing into a directory changes its mtime.
  for (const { path, mtime } of directoryTimes.reverse()) await lutimes(path, mtime, mtime).catch(() => undefined);
}
