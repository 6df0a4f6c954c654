/**
 * Tar plumbing for checkpoint archives (Podman's `--export`/`--import` layout): packing directories into a
 * streamed tar, extracting an untrusted tar into a directory without ever leaving it, the container's root
 * file-system diff (rootfs-diff.tar + deleted.files) from its overlay upper directory, and applying that diff.
 */
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, type Stats } from 'node:fs';
import { chmod, lchown, link, lstat, lutimes, mkdir, open, readdir, readFile, readlink, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import tar, { type Header as TarHeader } from 'tar-stream';
import { BadRequestError } from '../errors.js';

export const ROOTFS_DIFF_TAR = 'rootfs-diff.tar';
export const DELETED_FILES = 'deleted.files';

type Pack = ReturnType<typeof tar.pack>;
type Header = Partial<TarHeader> & Pick<TarHeader, 'name'>;

/** One thing to put into an archive: `path` on disk (a file, or a directory taken recursively) as `name`. */
export interface PackItem {
  name: string;
  path: string;
}

/**
 * Streams a tar of `items` (missing ones are skipped). File sizes are taken when a file is reached and only
 * that many bytes are sent, so a file that grows meanwhile cannot corrupt the archive. `onClose` runs once the
 * archive was read to its end, failed, or was destroyed by its reader.
 */
export function packArchive(items: PackItem[], logger: Logger, onClose?: () => Promise<void>): Readable {
  const pack = tar.pack();
  let closed: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closed ??= (onClose?.() ?? Promise.resolve()).catch((err: unknown) => logger.warn({ err }, 'cleaning up after a checkpoint archive failed'));
    return closed;
  };
  const run = async (): Promise<void> => {
    for (const item of items) {
      let st: Stats;
      try {
        st = await lstat(item.path);
      } catch {
        continue;
      }
      await addPath(pack, item.name, item.path, st);
    }
    // Every file was read: clean up before the reader sees the end, so it never sees leftovers.
    await close();
    pack.finalize();
  };
  run().catch((err: unknown) => {
    // A reader that went away (client disconnect) is no failure of ours.
    if (pack.destroyed) logger.debug({ err }, 'checkpoint archive closed by its reader');
    else logger.warn({ err }, 'writing a checkpoint archive failed');
    pack.destroy(err instanceof Error ? err : new Error(String(err)));
  });
  pack.once('close', () => void close());
  pack.once('error', () => void close());
  return pack as unknown as Readable;
}

function headerOf(name: string, st: Stats): Header {
  return { name, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
}

async function addPath(pack: Pack, name: string, path: string, st: Stats): Promise<void> {
  if (st.isDirectory()) {
    await addEntry(pack, { ...headerOf(`${name}/`, st), type: 'directory' });
    const children = (await readdir(path)).sort();
    for (const child of children) {
      let cst: Stats;
      try {
        cst = await lstat(join(path, child));
      } catch {
        continue;
      }
      await addPath(pack, `${name}/${child}`, join(path, child), cst);
    }
  } else if (st.isFile()) {
    await addFile(pack, headerOf(name, st), path, st.size);
  } else if (st.isSymbolicLink()) {
    await addEntry(pack, { ...headerOf(name, st), type: 'symlink', linkname: await readlink(path) });
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    const { major, minor } = splitDev(st.rdev);
    await addEntry(pack, { ...headerOf(name, st), type: st.isCharacterDevice() ? 'character-device' : 'block-device', devmajor: major, devminor: minor });
  } else if (st.isFIFO()) {
    await addEntry(pack, { ...headerOf(name, st), type: 'fifo' });
  }
  // Sockets cannot be archived (nor restored): skipped, as tar does.
}

/** Linux dev_t → major/minor (glibc's gnu_dev_major/minor). */
function splitDev(rdev: number): { major: number; minor: number } {
  const big = BigInt(rdev);
  const major = Number(((big >> 8n) & 0xfffn) | ((big >> 32n) & ~0xfffn));
  const minor = Number((big & 0xffn) | ((big >> 12n) & ~0xffn));
  return { major, minor };
}

function addEntry(pack: Pack, header: Header): Promise<void> {
  return new Promise((resolve, reject) => {
    const sink = pack.entry(header, (err) => (err ? reject(err) : resolve()));
    sink.on('error', () => undefined);
  });
}

/** Streams exactly `size` bytes of `path` into the archive (zero-padded should the file have shrunk). */
async function addFile(pack: Pack, header: Header, path: string, size: number): Promise<void> {
  if (size === 0) {
    await new Promise<void>((resolve, reject) => {
      const sink = pack.entry({ ...header, size: 0 }, Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      sink.on('error', () => undefined);
    });
    return;
  }
  let settle!: (err?: Error | null) => void;
  const entryDone = new Promise<void>((resolve, reject) => {
    settle = (err) => (err ? reject(err) : resolve());
  });
  entryDone.catch(() => undefined);
  const sink = pack.entry({ ...header, size }, (err) => settle(err));
  sink.on('error', () => undefined);
  const source = createReadStream(path, { start: 0, end: size - 1 });
  let sent = 0;
  const waitWritable = (): Promise<void> =>
    new Promise((resolve) => {
      const wake = (): void => {
        sink.off('drain', wake);
        sink.off('close', wake);
        (pack as unknown as NodeJS.EventEmitter).off('close', wake);
        resolve();
      };
      sink.on('drain', wake);
      sink.on('close', wake);
      (pack as unknown as NodeJS.EventEmitter).on('close', wake);
    });
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (sink.destroyed || pack.destroyed) throw new Error(`archive closed while writing ${header.name}`);
      sent += chunk.length;
      if (!sink.write(chunk)) await waitWritable();
    }
    if (sent < size && !sink.write(Buffer.alloc(size - sent))) await waitWritable();
    (sink as unknown as { end(): void }).end();
  } catch (err) {
    source.destroy();
    sink.destroy(err as Error);
    await entryDone.catch(() => undefined);
    throw err;
  }
  await entryDone;
}

// ---- reading archives --------------------------------------------------------------------------------------

/**
 * The request body as a plain tar: gzip is undone here, zstd through the `zstd` program (Podman's own
 * `--export` compresses with zstd by default; Node 20 has no zstd), bzip2/xz are refused.
 */
export async function decompressed(input: Readable, logger: Logger): Promise<Readable> {
  const head = await peek(input, 6);
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) {
    const gunzip = createGunzip();
    input.on('error', (err) => gunzip.destroy(err));
    return input.pipe(gunzip);
  }
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) {
    const child = spawn('zstd', ['-dcq'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out = new PassThrough();
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s.slice(0, 2000)));
    child.on('error', (err) => out.destroy(new BadRequestError(`zstd-compressed checkpoint archive, but zstd cannot run: ${err.message}`)));
    child.on('close', (code) => {
      if (code !== 0 && !out.destroyed) out.destroy(new BadRequestError(`decompressing the checkpoint archive failed: ${stderr.trim() || `zstd exit ${code}`}`));
    });
    child.stdin.on('error', () => undefined);
    input.on('error', (err) => out.destroy(err));
    input.pipe(child.stdin);
    child.stdout.pipe(out);
    out.on('close', () => {
      if (child.exitCode === null) child.kill();
    });
    logger.debug('checkpoint archive is zstd-compressed');
    return out;
  }
  if (head.subarray(0, 3).toString('latin1') === 'BZh' || (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])))) {
    input.resume();
    throw new BadRequestError('unsupported compression of the checkpoint archive: use none, gzip or zstd');
  }
  return input;
}

/** Reads at least `n` bytes (or up to EOF) and pushes them back, so the stream starts over. */
async function peek(input: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let have = 0;
  while (have < n) {
    const chunk = await new Promise<Buffer | null>((resolve, reject) => {
      const onReadable = (): void => {
        const data = input.read() as Buffer | null;
        if (data !== null) {
          cleanup();
          resolve(data);
        }
      };
      const onEnd = (): void => {
        cleanup();
        resolve(null);
      };
      const onError = (err: Error): void => {
        cleanup();
        reject(err);
      };
      const cleanup = (): void => {
        input.off('readable', onReadable);
        input.off('end', onEnd);
        input.off('error', onError);
      };
      input.on('readable', onReadable);
      input.once('end', onEnd);
      input.once('error', onError);
      onReadable();
    });
    if (chunk === null) break;
    chunks.push(chunk);
    have += chunk.length;
  }
  const head = Buffer.concat(chunks);
  if (head.length > 0) input.unshift(head);
  return head;
}

/** A member name made safe: relative, normalised, no `..` and no NUL. Null for the archive root itself. */
export function cleanMemberName(name: string): string | null {
  if (name.includes('\0')) throw new BadRequestError(`invalid file name in checkpoint archive: ${JSON.stringify(name)}`);
  // Any `..` is refused outright (normalising would only clamp it at the root and hide a hostile archive).
  if (name.split('/').includes('..')) throw new BadRequestError(`file name leaves the archive: ${JSON.stringify(name)}`);
  const normal = posix.normalize(`/${name}`).slice(1).replace(/\/+$/, '');
  if (normal === '' || normal === '.') return null;
  return normal;
}

export interface ExtractOptions {
  /** Apply owners (lchown) and times from the archive (a root file system); else files are root's. */
  owners: boolean;
  /** Called with each member name; returning false skips it. */
  filter?: (name: string) => boolean;
  logger: Logger;
  /** What the archive is, for error messages. */
  what: string;
}

/**
 * Extracts a tar into `dest` without ever writing outside it: every parent directory of a member must be a real
 * directory below `dest` (a symlink in the way is an error, never followed), an existing member is replaced
 * rather than written through, and hard links must point inside. Device nodes are skipped (Node cannot mknod).
 * Returns the number of members.
 */
export async function extractTar(input: Readable, dest: string, opts: ExtractOptions): Promise<number> {
  const extract = tar.extract();
  let inputError: unknown;
  input.on('error', (err) => {
    inputError = err;
    extract.destroy(err);
  });
  input.pipe(extract as unknown as NodeJS.WritableStream);
  let members = 0;
  const dirTimes: { path: string; mtime: Date }[] = [];
  try {
    for await (const entry of extract) {
      members++;
      const header = entry.header;
      const name = cleanMemberName(header.name);
      if (name === null || (opts.filter && !opts.filter(name))) {
        entry.resume();
        continue;
      }
      const target = join(dest, name);
      await ensureParents(dest, name);
      switch (header.type) {
        case 'directory': {
          const existing = await lstat(target).catch(() => null);
          if (existing && !existing.isDirectory()) await rm(target, { recursive: true, force: true });
          if (!existing?.isDirectory()) await mkdir(target, { mode: 0o755 });
          entry.resume();
          break;
        }
        case 'file':
        case 'contiguous-file': {
          await removeExisting(target);
          const fh = await open(target, 'wx', 0o600);
          try {
            for await (const chunk of entry as AsyncIterable<Buffer>) await fh.write(chunk);
          } finally {
            await fh.close();
          }
          break;
        }
        case 'symlink':
          await removeExisting(target);
          await symlink(header.linkname ?? '', target);
          entry.resume();
          break;
        case 'link': {
          const from = cleanMemberName(header.linkname ?? '');
          if (from === null) throw new BadRequestError(`hard link without target in ${opts.what}: ${name}`);
          await ensureParents(dest, from);
          await removeExisting(target);
          await link(join(dest, from), target);
          entry.resume();
          break;
        }
        default:
          opts.logger.debug({ name, type: header.type }, 'checkpoint archive member of this type skipped');
          entry.resume();
          continue;
      }
      await applyMetadata(target, header, opts.owners);
      if (header.type === 'directory' && opts.owners && header.mtime) dirTimes.push({ path: target, mtime: header.mtime });
    }
  } catch (err) {
    // Discard the rest rather than destroy the source: the client is still sending and must get our answer.
    input.unpipe(extract as unknown as NodeJS.WritableStream);
    input.resume();
    if (inputError) throw inputError;
    if (err instanceof BadRequestError) throw err;
    throw new BadRequestError(`invalid ${opts.what}: ${err instanceof Error ? err.message : String(err)}`);
  }
  // Directory times last: creating their children changed them.
  for (const d of dirTimes.reverse()) await lutimes(d.path, d.mtime, d.mtime).catch(() => undefined);
  return members;
}

/** Makes every parent of `name` a real directory below `root`; a symlink or file in the way is an error. */
async function ensureParents(root: string, name: string): Promise<void> {
  const parts = name.split('/').slice(0, -1);
  let current = root;
  for (const part of parts) {
    current = join(current, part);
    const st = await lstat(current).catch(() => null);
    if (!st) {
      await mkdir(current, { mode: 0o755 });
      continue;
    }
    if (!st.isDirectory()) {
      throw new BadRequestError(`"${name}" would be written through a ${st.isSymbolicLink() ? 'symbolic link' : 'non-directory'}: refused`);
    }
  }
}

/** Removes whatever is at `path` (never following a symlink) so a new member replaces it. */
async function removeExisting(path: string): Promise<void> {
  const st = await lstat(path).catch(() => null);
  if (!st) return;
  if (st.isDirectory()) await rm(path, { recursive: true, force: true });
  else await unlink(path);
}

async function applyMetadata(path: string, header: Header, owners: boolean): Promise<void> {
  if (header.type === 'symlink') {
    if (owners) await lchown(path, header.uid ?? 0, header.gid ?? 0).catch(() => undefined);
    return;
  }
  if (owners) await lchown(path, header.uid ?? 0, header.gid ?? 0);
  if (header.mode !== undefined) await chmod(path, header.mode & 0o7777);
  if (owners && header.mtime && header.type !== 'directory') await lutimes(path, header.mtime, header.mtime);
}

// ---- root file-system diff ---------------------------------------------------------------------------------

/**
 * The container's file-system changes, from its overlay upper directory: every added or changed file goes into
 * `<outDir>/rootfs-diff.tar`, every deleted path (overlay whiteouts; directories replaced wholesale, marked
 * opaque) into `<outDir>/deleted.files` (a JSON list, as Podman writes it). Returns the names written.
 */
export async function createRootfsDiff(upperDir: string, outDir: string, logger: Logger): Promise<string[]> {
  const opaque = await opaqueDirectories(upperDir, logger);
  const deleted: string[] = [];
  const items: PackItem[] = [];
  const walk = async (rel: string): Promise<void> => {
    const dir = rel ? join(upperDir, rel) : upperDir;
    for (const child of (await readdir(dir)).sort()) {
      const childRel = rel ? `${rel}/${child}` : child;
      const path = join(upperDir, childRel);
      const st = await lstat(path);
      if (st.isCharacterDevice() && st.rdev === 0) {
        deleted.push(childRel);
        continue;
      }
      if (st.isDirectory()) {
        // An opaque directory hides everything below it in the image: delete it, then recreate it from the diff.
        if (opaque.has(path)) deleted.push(childRel);
        items.push({ name: childRel, path });
        await walk(childRel);
        continue;
      }
      items.push({ name: childRel, path });
    }
  };
  await walk('');
  const written: string[] = [];
  if (items.length > 0) {
    const pack = tar.pack();
    const out = createWriteStream(join(outDir, ROOTFS_DIFF_TAR), { mode: 0o600 });
    const done = pipeline(pack as unknown as Readable, out);
    try {
      for (const item of items) {
        const st = await lstat(item.path);
        // Directories one by one (their content follows as items of its own), not recursively.
        if (st.isDirectory()) await addEntry(pack, { ...headerOf(`${item.name}/`, st), type: 'directory' });
        else await addPath(pack, item.name, item.path, st);
      }
      pack.finalize();
    } catch (err) {
      pack.destroy(err as Error);
      await done.catch(() => undefined);
      throw err;
    }
    await done;
    written.push(ROOTFS_DIFF_TAR);
  }
  if (deleted.length > 0) {
    await writeFile(join(outDir, DELETED_FILES), JSON.stringify(deleted), { mode: 0o600 });
    written.push(DELETED_FILES);
  }
  return written;
}

/** Directories of the upper dir marked `trusted.overlay.opaque=y` (getfattr from the attr package). */
async function opaqueDirectories(upperDir: string, logger: Logger): Promise<Set<string>> {
  const found = new Set<string>();
  const output = await new Promise<string>((resolve) => {
    const child = spawn('getfattr', ['-R', '-P', '--absolute-names', '-n', 'trusted.overlay.opaque', upperDir], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.on('error', (err) => {
      logger.warn({ err }, 'getfattr is missing: opaque directories in the rootfs diff are not recognised');
      resolve('');
    });
    child.on('close', () => resolve(out));
  });
  let file: string | undefined;
  for (const line of output.split('\n')) {
    if (line.startsWith('# file: ')) file = line.slice('# file: '.length);
    else if (file && /^trusted\.overlay\.opaque="y"/.test(line)) found.add(file);
  }
  return found;
}

/**
 * Applies a checkpoint's file-system changes to a (mounted) container root: first the deletions listed in
 * deleted.files, then rootfs-diff.tar (deleting first lets a directory that was replaced wholesale come back
 * with its new content). Missing files mean no changes.
 */
export async function applyRootfsDiff(fromDir: string, rootfs: string, logger: Logger): Promise<void> {
  let deleted: unknown = [];
  try {
    deleted = JSON.parse(await readFile(join(fromDir, DELETED_FILES), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new BadRequestError(`invalid ${DELETED_FILES} in the checkpoint: ${String(err)}`);
  }
  if (!Array.isArray(deleted)) throw new BadRequestError(`invalid ${DELETED_FILES} in the checkpoint: not a list`);
  for (const entry of deleted) {
    if (typeof entry !== 'string') continue;
    const name = cleanMemberName(entry);
    if (name === null) continue;
    // Only below real directories: a symlinked parent would point the deletion elsewhere.
    if (!(await parentsAreDirectories(rootfs, name))) continue;
    await rm(join(rootfs, name), { recursive: true, force: true });
  }
  const diff = join(fromDir, ROOTFS_DIFF_TAR);
  const st = await lstat(diff).catch(() => null);
  if (!st) return;
  await extractTar(createReadStream(diff), rootfs, { owners: true, logger, what: 'root file-system diff' });
}

async function parentsAreDirectories(root: string, name: string): Promise<boolean> {
  let current = root;
  for (const part of name.split('/').slice(0, -1)) {
    current = join(current, part);
    const st = await lstat(current).catch(() => null);
    if (!st?.isDirectory()) return false;
  }
  return true;
}
