import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';

/** fsync a file or a directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, fsConstants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Replaces `path` with `data` so that a crash leaves either the old or the new content, never a
 * mixture: write a sibling temp file, fsync it, rename it over, fsync the directory.
 */
export async function writeFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncPath(dirname(path));
}

/** A system tool that failed: the message names it and ends with what it wrote on stderr. */
export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    message: string,
    readonly stderr: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

/**
 * Runs a system tool (mount, umount, sync, mknod, setfattr) to completion, stdin closed; rejects with a ToolError
 * unless it exits 0. Plain child_process: these run on every container start and stop.
 */
export function runTool(file: string, args: readonly string[], opts: { cwd?: string } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const command = [file, ...args].join(' ');
    const child = spawn(file, args, { cwd: opts.cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (text: string) => {
      if (stderr.length < 65536) stderr += text;
    });
    child.once('error', (err) => reject(new ToolError(`cannot run ${command}: ${err.message}`, '', null)));
    child.once('close', (code, signal) => {
      if (code === 0) return resolve();
      const why = code === null ? `was killed with ${signal}` : `failed with exit code ${code}`;
      const detail = stderr.trim();
      reject(new ToolError(`Command ${why}: ${command}${detail ? `\n${detail}` : ''}`, detail, code));
    });
  });
}

/** Flushes everything written on the filesystem holding `path` (syncfs through coreutils `sync -f`). */
export async function syncFilesystem(path: string): Promise<void> {
  await runTool('sync', ['-f', path]);
}

export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true, maxRetries: 2 });
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { recursive: true, mode });
}

/** A fresh, uniquely named directory under `parent`. */
export async function makeTempDir(parent: string, prefix: string): Promise<string> {
  const dir = join(parent, `${prefix}${randomBytes(6).toString('hex')}`);
  await mkdir(dir, { mode: 0o700 });
  return dir;
}

export function isErrno(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
