/**
 * Unpacks one layer tar into an empty directory, safely and faithfully:
 * - paths are checked lexically and every parent is known to be a real directory created here, so
 *   nothing is ever written through a symlink, and ".." / absolute names are refused;
 * - modes, owners, mtimes, symlinks, hardlinks, device nodes, FIFOs and SCHILY xattrs are kept;
 * - whiteouts become overlayfs whiteouts: `.wh.<name>` → a 0/0 character device `<name>`,
 *   `.wh..wh..opq` → `trusted.overlay.opaque=y` on the directory.
 * The uncompressed stream is hashed while it is unpacked; the caller compares it with the diff ID.
 */
import { chmod, lchown, link, lstat, lutimes, mkdir, open, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import type { Readable } from 'node:stream';
import tar from 'tar-stream';
import type { Logger } from 'pino';
import { BadRequestError } from '../errors.js';
import { asArchiveError, cleanMemberPath, decompressed, type Compression } from './archive.js';
import { HashingStream } from './digest.js';
import { isErrno, runTool } from './fsutil.js';

const whiteoutPrefix = '.wh.';
const whiteoutMetaPrefix = '.wh..wh.';
const opaqueMarker = '.wh..wh..opq';

export interface UnpackResult {
  /** sha256 of the uncompressed tar stream. */
  diffId: string;
  /** Bytes of the uncompressed tar stream. */
  size: number;
  compression: Compression;
}

interface Xattr {
  rel: string;
  name: string;
  value: Buffer;
}

type Header = tar.Header & { pax?: Record<string, string> | null };

/** Applies tar entries under `root`, remembering which paths are directories it created. */
class LayerWriter {
  private readonly dirs = new Set<string>(['']);
  private readonly dirTimes: Array<{ rel: string; atime: number; mtime: number }> = [];
  readonly xattrs: Xattr[] = [];
  private readonly isRoot = process.getuid?.() === 0;

  constructor(
    private readonly root: string,
    private readonly what: string,
    private readonly logger: Logger,
  ) {}

  private abs(rel: string): string {
    return rel === '' ? this.root : join(this.root, rel);
  }

  private bad(name: string, why: string): BadRequestError {
    return new BadRequestError(`${this.what}: entry "${name}": ${why}`);
  }

  /** Creates missing parents of `rel`; refuses to descend through anything but our own directories. */
  private async ensureParents(rel: string, entryName: string): Promise<void> {
    const parts = rel.split('/');
    let current = '';
    for (let i = 0; i < parts.length - 1; i++) {
      current = current === '' ? parts[i]! : `${current}/${parts[i]}`;
      if (this.dirs.has(current)) continue;
      try {
        await mkdir(this.abs(current), 0o755);
      } catch (err) {
        if (isErrno(err, 'EEXIST')) throw this.bad(entryName, `"${current}" is not a directory (writing through it is refused)`);
        throw err;
      }
      this.dirs.add(current);
    }
  }

  /** Clears the way for a new entry at `rel` (a later tar entry replaces an earlier one). */
  private async clear(rel: string, keepDirectory: boolean): Promise<boolean> {
    if (this.dirs.has(rel)) {
      if (keepDirectory) return true;
      await rm(this.abs(rel), { recursive: true, force: true });
      for (const d of [...this.dirs]) if (d === rel || d.startsWith(`${rel}/`)) this.dirs.delete(d);
      return false;
    }
    try {
      await unlink(this.abs(rel));
    } catch (err) {
      if (!isErrno(err, 'ENOENT')) throw err;
    }
    return false;
  }

  private times(header: Header): { atime: number; mtime: number } {
    const pax = header.pax ?? {};
    const mtime = pax.mtime !== undefined ? Number.parseFloat(pax.mtime) : header.mtime.getTime() / 1000;
    const atime = pax.atime !== undefined ? Number.parseFloat(pax.atime) : mtime;
    return { atime: Number.isFinite(atime) ? atime : mtime, mtime: Number.isFinite(mtime) ? mtime : 0 };
  }

  private owner(header: Header): { uid: number; gid: number } {
    const pax = header.pax ?? {};
    const uid = pax.uid !== undefined ? Number.parseInt(pax.uid, 10) : header.uid;
    const gid = pax.gid !== undefined ? Number.parseInt(pax.gid, 10) : header.gid;
    return { uid, gid };
  }

  private async chown(path: string, header: Header): Promise<void> {
    const { uid, gid } = this.owner(header);
    try {
      await lchown(path, uid, gid);
    } catch (err) {
      // Without root only our own ids are possible; everything else is kept as far as allowed.
      if (this.isRoot || !isErrno(err, 'EPERM')) throw err;
    }
  }

  private collectXattrs(rel: string, header: Header): void {
    const pax = header.pax;
    if (!pax) return;
    for (const [key, value] of Object.entries(pax)) {
      if (!key.startsWith('SCHILY.xattr.')) continue;
      const name = key.slice('SCHILY.xattr.'.length);
      if (name === 'security.selinux') continue; // labels are the runtime's business
      if (value.includes('\uFFFD')) {
        // tar-stream decodes PAX values as UTF-8, which loses binary values: better none than a wrong one.
        this.logger.warn({ entry: header.name, xattr: name }, 'binary extended attribute not restorable; skipped');
        continue;
      }
      this.xattrs.push({ rel, name, value: Buffer.from(value, 'utf8') });
    }
  }

  async apply(header: Header, data: Readable): Promise<void> {
    const rel = cleanMemberPath(header.name, `${this.what}: entry`);
    const base = posix.basename(rel);
    const parent = posix.dirname(rel) === '.' ? '' : posix.dirname(rel);

    // aufs bookkeeping (.wh..wh.plnk/…, .wh..wh.aufs) is not part of the filesystem.
    if (rel.split('/').some((c) => c.startsWith(whiteoutMetaPrefix) && c !== opaqueMarker)) {
      await drain(data);
      return;
    }
    if (base.startsWith(whiteoutPrefix)) {
      await drain(data);
      if (base === opaqueMarker) {
        await this.makeDirectory(parent, header.name);
        this.xattrs.push({ rel: parent, name: 'trusted.overlay.opaque', value: Buffer.from('y') });
      } else {
        const hidden = base.slice(whiteoutPrefix.length);
        if (hidden === '' || hidden === '.' || hidden === '..') throw this.bad(header.name, 'invalid whiteout');
        const target = parent === '' ? hidden : `${parent}/${hidden}`;
        await this.ensureParents(target, header.name);
        await this.clear(target, false);
        await runTool('mknod', [this.abs(target), 'c', '0', '0']);
      }
      return;
    }

    switch (header.type) {
      case 'directory': {
        await drain(data);
        await this.makeDirectory(rel, header.name);
        const path = this.abs(rel);
        await this.chown(path, header);
        await chmod(path, header.mode & 0o7777);
        this.dirTimes.push({ rel, ...this.times(header) });
        this.collectXattrs(rel, header);
        return;
      }
      case 'file':
      case 'contiguous-file': {
        if (rel === '') throw this.bad(header.name, 'a file cannot replace the layer root');
        await this.ensureParents(rel, header.name);
        await this.clear(rel, false);
        const path = this.abs(rel);
        const fh = await open(path, 'wx', 0o600);
        try {
          for await (const chunk of data as AsyncIterable<Buffer>) await fh.write(chunk);
          const { uid, gid } = this.owner(header);
          try {
            await fh.chown(uid, gid);
          } catch (err) {
            if (this.isRoot || !isErrno(err, 'EPERM')) throw err;
          }
          await fh.chmod(header.mode & 0o7777); // after chown, which clears set-id bits
          const { atime, mtime } = this.times(header);
          await fh.utimes(atime, mtime);
        } finally {
          await fh.close();
        }
        this.collectXattrs(rel, header);
        return;
      }
      case 'symlink': {
        await drain(data);
        if (rel === '') throw this.bad(header.name, 'a symlink cannot replace the layer root');
        await this.ensureParents(rel, header.name);
        await this.clear(rel, false);
        const path = this.abs(rel);
        // The target is stored verbatim; it is only ever interpreted inside the container's root.
        await symlink(header.linkname ?? '', path);
        await this.chown(path, header);
        const { atime, mtime } = this.times(header);
        await lutimes(path, atime, mtime);
        this.collectXattrs(rel, header);
        return;
      }
      case 'link': {
        await drain(data);
        if (rel === '') throw this.bad(header.name, 'a hardlink cannot replace the layer root');
        const target = cleanMemberPath(header.linkname ?? '', `${this.what}: hardlink "${header.name}" target`);
        if (target === '' || this.dirs.has(target)) throw this.bad(header.name, `hardlink target "${header.linkname}" is a directory`);
        // Every parent of the target must be one of our directories: link(2) then cannot be redirected.
        const targetParent = posix.dirname(target) === '.' ? '' : posix.dirname(target);
        if (!this.dirs.has(targetParent)) throw this.bad(header.name, `hardlink target "${header.linkname}" is outside this layer`);
        try {
          const st = await lstat(this.abs(target));
          if (st.isDirectory()) throw this.bad(header.name, `hardlink target "${header.linkname}" is a directory`);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) throw this.bad(header.name, `hardlink target "${header.linkname}" does not exist in this layer`);
          throw err;
        }
        if (target === rel) return;
        await this.ensureParents(rel, header.name);
        await this.clear(rel, false);
        await link(this.abs(target), this.abs(rel));
        return;
      }
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        await drain(data);
        if (rel === '') throw this.bad(header.name, 'a device cannot replace the layer root');
        await this.ensureParents(rel, header.name);
        await this.clear(rel, false);
        const path = this.abs(rel);
        const mode = (header.mode & 0o7777).toString(8);
        const args =
          header.type === 'fifo'
            ? ['-m', mode, path, 'p']
            : ['-m', mode, path, header.type === 'character-device' ? 'c' : 'b', String(header.devmajor), String(header.devminor)];
        await runTool('mknod', args);
        await this.chown(path, header);
        await chmod(path, header.mode & 0o7777);
        const { atime, mtime } = this.times(header);
        await lutimes(path, atime, mtime);
        this.collectXattrs(rel, header);
        return;
      }
      default:
        await drain(data);
        throw this.bad(header.name, `unsupported tar entry type ${String(header.type)}`);
    }
  }

  private async makeDirectory(rel: string, entryName: string): Promise<void> {
    if (this.dirs.has(rel)) return;
    await this.ensureParents(rel, entryName);
    await this.clear(rel, true);
    await mkdir(this.abs(rel), 0o755);
    this.dirs.add(rel);
  }

  /** Extended attributes in one setfattr run, then directory times deepest-first (children touch them). */
  async finish(scratchDir: string): Promise<void> {
    if (this.xattrs.length > 0) {
      const dump = join(scratchDir, `xattrs-${process.pid}-${Date.now()}.txt`);
      const lines: string[] = [];
      for (const x of this.xattrs) {
        lines.push(`# file: ${escapeAttrPath(x.rel === '' ? '.' : x.rel)}`, `${x.name}=0s${x.value.toString('base64')}`, '');
      }
      await writeFile(dump, lines.join('\n'), { mode: 0o600 });
      try {
        // -h: act on symlinks themselves, never on what they point at.
        await runTool('setfattr', ['-h', `--restore=${dump}`], { cwd: this.root });
      } finally {
        await rm(dump, { force: true });
      }
    }
    const byDepth = [...this.dirTimes].sort((a, b) => depth(b.rel) - depth(a.rel));
    for (const d of byDepth) {
      if (!this.dirs.has(d.rel)) continue;
      await lutimes(this.abs(d.rel), d.atime, d.mtime);
    }
  }
}

function depth(rel: string): number {
  return rel === '' ? 0 : rel.split('/').length;
}

/** setfattr's dump format escapes backslashes and non-printable bytes as octal. */
function escapeAttrPath(path: string): string {
  let out = '';
  for (const byte of Buffer.from(path, 'utf8')) {
    out += byte === 0x5c || byte < 0x21 || byte > 0x7e ? `\\${byte.toString(8).padStart(3, '0')}` : String.fromCharCode(byte);
  }
  return out;
}

async function drain(data: Readable): Promise<void> {
  for await (const _chunk of data as AsyncIterable<Buffer>) {
    // discard
  }
}

/**
 * Unpacks the layer blob `blob` (gzip or plain tar) into the existing, empty directory `dest`.
 * `scratchDir` receives short-lived helper files. Throws BadRequestError for bad content; the
 * caller removes `dest` on failure.
 */
export async function unpackLayer(blob: Readable, dest: string, scratchDir: string, what: string, logger: Logger): Promise<UnpackResult> {
  let compression: Compression = 'none';
  const extract = tar.extract({ allowUnknownFormat: true } as never);
  const hasher = new HashingStream();
  let sourceError: unknown;
  let plain: Readable | undefined;
  try {
    const d = await decompressed(blob, what);
    compression = d.compression;
    plain = d.stream;
    plain.on('error', (err) => {
      sourceError = err;
      hasher.destroy(err);
    });
    hasher.on('error', (err) => {
      sourceError ??= err;
      extract.destroy(err);
    });
    plain.pipe(hasher).pipe(extract as unknown as NodeJS.WritableStream);
    const writer = new LayerWriter(dest, what, logger);
    for await (const entry of extract) {
      await writer.apply(entry.header as Header, entry as unknown as Readable);
    }
    await writer.finish(scratchDir);
  } catch (err) {
    plain?.destroy();
    blob.destroy();
    throw asArchiveError(sourceError ?? err, what);
  }
  return { diffId: hasher.digest(), size: hasher.bytes, compression };
}
