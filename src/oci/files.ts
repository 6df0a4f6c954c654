/**
 * conmon's files: exit files (read and waited for), the ctl FIFO (resize), pid files; plus process liveness.
 */
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { InternalError } from '../errors.js';
import type { ExitFileInfo } from './types.js';

export function exitFilePath(exitDir: string, id: string): string {
  return join(exitDir, id);
}

/** conmon writes the decimal status with g_file_set_contents (temp file + rename), so a read sees all or nothing. */
export async function readExitFile(exitDir: string, id: string): Promise<ExitFileInfo | null> {
  const path = exitFilePath(exitDir, id);
  let content: string;
  let mtime: Date;
  try {
    [content, mtime] = await Promise.all([readFile(path, 'utf8'), stat(path).then((s) => s.mtime)]);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
  const exitCode = Number.parseInt(content.trim(), 10);
  if (!Number.isFinite(exitCode)) {
    throw new InternalError(`invalid exit file ${path}: ${JSON.stringify(content.slice(0, 32))}`);
  }
  return { exitCode, finishedAt: mtime };
}

/**
 * Wait for conmon to write `<exitDir>/<id>`. inotify (fs.watch) on the directory wakes us; the file is
 * checked once after the watch is armed so an exit that already happened is not missed.
 */
export async function waitExitFile(
  exitDir: string,
  id: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ExitFileInfo | null> {
  if (signal?.aborted) return null;
  const existing = await readExitFile(exitDir, id);
  if (existing || timeoutMs <= 0 || signal?.aborted) return existing;
  // fs.watch needs the directory; an abandoned wait must not recreate one its owner has just removed.
  await mkdir(exitDir, { recursive: true });

  return new Promise<ExitFileInfo | null>((resolve, reject) => {
    let watcher: FSWatcher | undefined;
    let settled = false;
    let checking = false;
    let recheck = false;
    const finish = (value: ExitFileInfo | null, err?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      watcher?.close();
      signal?.removeEventListener('abort', onAbort);
      if (err !== undefined) reject(err);
      else resolve(value);
    };
    const check = (): void => {
      if (settled) return;
      if (checking) {
        recheck = true;
        return;
      }
      checking = true;
      readExitFile(exitDir, id).then(
        (info) => {
          checking = false;
          if (info) finish(info);
          else if (recheck) {
            recheck = false;
            check();
          }
        },
        (err: unknown) => finish(null, err),
      );
    };
    const onAbort = (): void => finish(null);
    const timer = setTimeout(() => finish(null), timeoutMs);
    signal?.addEventListener('abort', onAbort);
    if (signal?.aborted) return finish(null);
    try {
      watcher = watch(exitDir, { persistent: false }, (_event, filename) => {
        if (filename === null || filename === id) check();
      });
      watcher.on('error', (err) => finish(null, err));
    } catch (err) {
      return finish(null, err);
    }
    check();
  });
}

/**
 * Write one control message to conmon's ctl FIFO: `<type> <h> <w>\n` (1 = resize, 2 = reopen logs).
 * conmon keeps a writer of its own open, so ENXIO (no reader) means conmon is gone; EAGAIN/EINTR/ENXIO are
 * retried briefly anyway, like Podman's openControlFile.
 */
export async function writeCtlMessage(ctlPath: string, type: number, height: number, width: number): Promise<void> {
  const message = `${type} ${Math.trunc(height)} ${Math.trunc(width)}\n`;
  const deadline = Date.now() + CTL_RETRY_MS;
  for (;;) {
    try {
      const handle = await open(ctlPath, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK);
      try {
        await handle.write(message);
      } finally {
        await handle.close();
      }
      return;
    } catch (err) {
      const retryable = isErrno(err, 'EAGAIN') || isErrno(err, 'EINTR') || isErrno(err, 'ENXIO');
      if (!retryable || Date.now() >= deadline) {
        const text = err instanceof Error ? err.message : String(err);
        throw new InternalError(`failed to write to ctl file ${ctlPath}: ${text}`);
      }
      await delay(CTL_RETRY_INTERVAL_MS);
    }
  }
}
const CTL_RETRY_MS = 1000;
const CTL_RETRY_INTERVAL_MS = 50;

/** A PID from a pid file, or null if the file does not exist. */
export async function readPidFile(path: string): Promise<number | null> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return null;
    throw err;
  }
}

/** kill(pid, 0): EPERM still means the process exists. */
export function isPidAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

/** `/proc/<pid>/comm`, or null if the process is gone. Guards signals against PID reuse. */
export async function processName(pid: number): Promise<string | null> {
  try {
    return (await readFile(`/proc/${pid}/comm`, 'utf8')).trim();
  } catch {
    return null;
  }
}

/** Is the process a zombie or gone? (A zombie still answers kill(pid, 0).) */
export async function processExited(pid: number): Promise<boolean> {
  if (!isPidAlive(pid)) return true;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Field 3 follows the parenthesised command name, which may itself contain spaces or parentheses.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

/**
 * Wait until `pid` exits, polling — for processes that are not our children there is no event to wait on
 * (no pidfd in Node). Returns false on timeout.
 */
export async function waitPidExit(pid: number, timeoutMs: number, intervalMs = 100, signal?: AbortSignal): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await processExited(pid)) return true;
    if (signal?.aborted || Date.now() >= deadline) return false;
    await delay(Math.min(intervalMs, Math.max(1, deadline - Date.now())));
  }
}

export function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as NodeJS.ErrnoException).code === code;
}
