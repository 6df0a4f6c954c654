/**
 * Reading tar archives from a stream: compression sniffing, path hygiene, and spooling every
 * member to its own temp file (hashed on the way) so that archives whose index comes last
 * (docker-archive's manifest.json) can be resolved afterwards without holding anything in memory.
 */
import { open } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import tar from 'tar-stream';
import type { Logger } from 'pino';
import { BadRequestError, PodserveError } from '../errors.js';
import { Sha256Counter } from './digest.js';

export type Compression = 'gzip' | 'bzip2' | 'xz' | 'zstd' | 'none';

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 3 && head.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (head.length >= 6 && head.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Looks at the first bytes of `input` without losing them: returns them and a stream that yields
 * the whole input again, pulling from the original only as fast as it is read.
 */
export async function peek(input: Readable, want = 8): Promise<{ head: Buffer; stream: Readable }> {
  const it = input[Symbol.asyncIterator]() as AsyncIterator<Buffer | string>;
  const chunks: Buffer[] = [];
  let length = 0;
  let done = false;
  while (length < want) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    chunks.push(chunk);
    length += chunk.length;
  }
  const head = Buffer.concat(chunks);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head.length > 0) yield head;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    }
  }
  const stream = Readable.from(replay(), { objectMode: false });
  // Abandoning the replay must release the source too.
  stream.once('close', () => {
    if (!input.destroyed && !input.readableEnded) input.destroy();
  });
  return { head, stream };
}

/** Returns a stream of the uncompressed bytes of `input` (gzip or plain; other formats refused). */
export async function decompressed(input: Readable, what: string): Promise<{ stream: Readable; compression: Compression }> {
  const { head, stream } = await peek(input);
  const compression = detectCompression(head);
  switch (compression) {
    case 'none':
      return { stream, compression };
    case 'gzip': {
      const gunzip = createGunzip();
      stream.on('error', (err) => gunzip.destroy(err));
      gunzip.once('close', () => stream.destroy());
      return { stream: stream.pipe(gunzip), compression };
    }
    default:
      stream.destroy();
      throw new BadRequestError(`${what} is ${compression}-compressed: only gzip and uncompressed tar are supported`);
  }
}

/**
 * Cleans a member path of an archive. Leading "./" and trailing "/" go; absolute paths and any
 * ".." component are refused. Returns "" for the archive root.
 */
export function cleanMemberPath(name: string, what = 'archive entry'): string {
  if (name.includes('\0')) throw new BadRequestError(`${what} "${name}": NUL byte in path`);
  if (name.startsWith('/')) throw new BadRequestError(`${what} "${name}": absolute paths are not allowed`);
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw new BadRequestError(`${what} "${name}": path traversal ("..") is not allowed`);
    parts.push(part);
  }
  return parts.join('/');
}

const corruptMessages = [
  'Invalid tar header',
  'Unexpected end of data',
  'Header exceeds max size',
  'Invalid header',
  'unexpected end of file',
  'incorrect header check',
  'invalid block type',
  'invalid distance',
  'invalid stored block',
  'invalid code',
  'too many length',
  'invalid literal',
];

/** Turns errors of gunzip / tar parsing into a 400 that says what was wrong with the upload. */
export function asArchiveError(err: unknown, what: string): Error {
  if (err instanceof PodserveError) return err;
  const e = err as NodeJS.ErrnoException;
  const message = e?.message ?? String(err);
  const zlib = typeof e?.code === 'string' && e.code.startsWith('Z_');
  if (zlib || corruptMessages.some((m) => message.includes(m))) {
    return new BadRequestError(`${what} is truncated or corrupt: ${message}`);
  }
  if (e?.code === 'ECONNRESET' || message === 'aborted') {
    return new BadRequestError(`${what}: upload aborted before the end of the archive`);
  }
  return err instanceof Error ? err : new Error(message);
}

export interface SpooledFile {
  /** Temp file holding the member's bytes. */
  file: string;
  size: number;
  /** sha256 of the member's bytes. */
  digest: string;
}

export interface SpooledArchive {
  files: Map<string, SpooledFile>;
  /** Symbolic and hard links between members (cleaned name → target as written). */
  links: Map<string, { target: string; hard: boolean }>;
  entries: number;
}

/**
 * Reads a (decompressed) tar stream and writes every regular member to `dir`, hashing as it goes.
 * Memory stays flat: one chunk in flight at a time.
 */
export async function spoolArchive(input: Readable, dir: string, what: string, logger: Logger): Promise<SpooledArchive> {
  const extract = tar.extract();
  const result: SpooledArchive = { files: new Map(), links: new Map(), entries: 0 };
  let inputError: unknown;
  input.on('error', (err) => {
    inputError = err;
    extract.destroy(err);
  });
  input.pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      const header = entry.header;
      result.entries++;
      const name = cleanMemberPath(header.name, `${what} member`);
      switch (header.type) {
        case 'file':
        case 'contiguous-file': {
          const file = join(dir, `m${result.entries}`);
          const counter = new Sha256Counter();
          const fh = await open(file, 'wx', 0o600);
          try {
            for await (const chunk of entry as AsyncIterable<Buffer>) {
              counter.update(chunk);
              await fh.write(chunk);
            }
          } finally {
            await fh.close();
          }
          result.files.set(name, { file, size: counter.bytes, digest: counter.digest() });
          break;
        }
        case 'symlink':
        case 'link':
          result.links.set(name, { target: header.linkname ?? '', hard: header.type === 'link' });
          entry.resume();
          break;
        default:
          entry.resume();
      }
    }
  } catch (err) {
    input.unpipe(extract as unknown as NodeJS.WritableStream);
    input.destroy();
    throw asArchiveError(inputError ?? err, what);
  }
  if (result.entries === 0) throw new BadRequestError(`${what} is empty or not a tar archive`);
  logger.debug({ members: result.entries, files: result.files.size }, 'archive spooled');
  return result;
}

/** Finds a member by name, following links inside the archive (never outside it). */
export function resolveMember(archive: SpooledArchive, name: string): SpooledFile | undefined {
  let current: string;
  try {
    current = cleanMemberPath(name);
  } catch {
    return undefined;
  }
  for (let hops = 0; hops < 16; hops++) {
    const file = archive.files.get(current);
    if (file) return file;
    const link = archive.links.get(current);
    if (!link) return undefined;
    const target = link.hard ? link.target : posix.join(posix.dirname(current), link.target);
    if (posix.normalize(target).startsWith('..') || link.target.startsWith('/')) return undefined;
    try {
      current = cleanMemberPath(posix.normalize(target));
    } catch {
      return undefined;
    }
  }
  return undefined;
}
