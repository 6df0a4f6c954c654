/**
 * Checkpoint and restore through runc and CRIU, as Podman 4.3.1 drives them (libpod/oci_conmon_common.go
 * CheckpointContainer, createOCIContainer's `--restore`):
 *
 *   runc --criu <criu> checkpoint --image-path <images> --work-path <bundle> [--leave-running] [--tcp-established]
 *        [--file-locks] [--pre-dump] [--parent-path ../pre-checkpoint] <id>
 *   conmon … --runtime-arg --criu --runtime-arg <criu> --restore <images> [--runtime-opt --tcp-established]
 *        [--runtime-opt --file-locks]   → conmon runs `runc … restore --detach --image-path … --work-path <bundle>`
 *
 * CRIU writes dump.log/restore.log and stats-dump/stats-restore into the work path (the bundle). When it fails,
 * runc only says "criu failed: type DUMP errno 0"; CRIU's own reason is in that log, so errors carry its
 * `Error (…)` lines. Unlike Podman, podserve names the CRIU binary explicitly (`runc --criu`), so a private
 * CRIU install works without touching PATH.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { RuntimeError } from '../errors.js';
import { runCommand } from './runtime-cli.js';

/** Podman's criu.MinCriuVersion: 3.16.0 as CRIU's version number. */
export const MIN_CRIU_VERSION = 31600;

/** What `runc checkpoint` is asked to do. */
export interface CheckpointSpec {
  /** Bundle directory: CRIU's work path (dump.log, stats-dump). */
  bundleDir: string;
  /** Directory CRIU writes the images to (created by runc). */
  imagePath: string;
  /** Keep the container running after the dump (--leave-running). */
  leaveRunning?: boolean;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  /** Dump memory only, leave the container running (--pre-dump). */
  preDump?: boolean;
  /** A previous pre-dump's images, relative to imagePath (--parent-path), e.g. `../pre-checkpoint`. */
  parentPath?: string;
}

export interface CheckpointOutcome {
  /** How long runc (and CRIU) took, in microseconds (Podman's runtime_checkpoint_duration). */
  durationUs: number;
}

/** Restore options, carried by ContainerRunSpec.restore into conmon's command line. */
export interface RestoreSpec {
  /** The checkpoint images (conmon --restore). */
  imagePath: string;
  tcpEstablished?: boolean;
  fileLocks?: boolean;
}

/** The CRIU podserve hands to runc, as /info reports it. */
export interface CriuInfo {
  path: string;
  /** "4.1.1", or "" when it could not be run. */
  version: string;
  /** CRIU's version as one number (40101), 0 when unknown. */
  versionNumber: number;
  /** It ran, is recent enough, and `criu check` found this kernel usable. */
  available: boolean;
  /** Why it is not available (CRIU's own words when it ran). */
  error?: string;
}

/** CRIU's statistics as Podman reports them (define.CRIUCheckpointRestoreStatistics); absent fields are 0. */
export interface CriuStatistics {
  freezing_time?: number;
  frozen_time?: number;
  memdump_time?: number;
  memwrite_time?: number;
  pages_scanned?: number;
  pages_written?: number;
  pages_compared?: number;
  pages_skipped_cow?: number;
  forking_time?: number;
  restore_time?: number;
  pages_restored?: number;
}

export interface CriuContext {
  runtimePath: string;
  runtimeName: string;
  runtimeFlags: string[];
  criuPath: string;
  env: Record<string, string>;
  timeoutMs: number;
  logger: Logger;
}

/** The runc argv for a checkpoint (global flags first, then the verb). */
export function checkpointArgs(ctx: Pick<CriuContext, 'runtimeFlags' | 'criuPath'>, id: string, spec: CheckpointSpec): string[] {
  const args = [...ctx.runtimeFlags, '--criu', ctx.criuPath, 'checkpoint', '--image-path', spec.imagePath, '--work-path', spec.bundleDir];
  if (spec.leaveRunning && !spec.preDump) args.push('--leave-running');
  if (spec.tcpEstablished) args.push('--tcp-established');
  if (spec.fileLocks) args.push('--file-locks');
  if (spec.preDump) args.push('--pre-dump');
  else if (spec.parentPath) args.push('--parent-path', spec.parentPath);
  args.push(id);
  return args;
}

/** Extra conmon arguments for a restore: runc gets the CRIU path as a global flag, and the restore options. */
export function restoreConmonArgs(restore: RestoreSpec, criuPath: string): string[] {
  const args = ['--runtime-arg', '--criu', '--runtime-arg', criuPath, '--restore', restore.imagePath];
  if (restore.tcpEstablished) args.push('--runtime-opt', '--tcp-established');
  if (restore.fileLocks) args.push('--runtime-opt', '--file-locks');
  return args;
}

/** Runs `runc checkpoint`. On failure the error carries runc's message and CRIU's errors from dump.log. */
export async function runCheckpoint(ctx: CriuContext, id: string, spec: CheckpointSpec): Promise<CheckpointOutcome> {
  const started = process.hrtime.bigint();
  const result = await runCommand(ctx.runtimePath, checkpointArgs(ctx, id, spec), { env: ctx.env, timeoutMs: ctx.timeoutMs, logger: ctx.logger });
  const durationUs = Number((process.hrtime.bigint() - started) / 1000n);
  if (result.exitCode === 0) return { durationUs };
  const runtimeText = runcErrorText(result.stderr) || `exit status ${result.exitCode}`;
  const criuErrors = await criuLogErrors(join(spec.bundleDir, 'dump.log'));
  throw criuFailure(ctx.runtimeName, spec.preDump ? 'pre-checkpoint' : 'checkpoint', runtimeText, criuErrors);
}

/**
 * A restore error from conmon/runc, enriched with CRIU's errors from restore.log (runc's message alone says
 * only "criu failed: type RESTORE errno 0").
 */
export async function restoreFailure(runtimeName: string, err: unknown, bundleDir: string): Promise<RuntimeError> {
  const criuErrors = await criuLogErrors(join(bundleDir, 'restore.log'));
  const cause = err instanceof RuntimeError ? err.causeText : err instanceof Error ? err.message : String(err);
  return criuFailure(runtimeName, 'restore', stripLogFileHint(cause), criuErrors);
}

/**
 * After a failed restore, removes what CRIU may leave behind when it died or was killed midway (seen with a
 * corrupt image: a half-restored task spinning in the container's cgroup, CRIU's cgroup yard and root mounts,
 * runc's state directory without a state): processes in the container's cgroup are killed, those mounts
 * detached, the directories removed. Best effort; never throws.
 */
export async function cleanupFailedRestore(opts: { id: string; bundleDir: string; runcRoot: string; logger: Logger }): Promise<void> {
  const { id, bundleDir, runcRoot, logger } = opts;
  try {
    const cgroupsPath = await readCgroupsPath(bundleDir);
    const dirs = cgroupsPath ? await cgroupDirs(cgroupsPath) : [];
    const pids = new Set<number>();
    for (const dir of dirs) {
      const procs = await readFile(join(dir, 'cgroup.procs'), 'utf8').catch(() => '');
      for (const line of procs.split('\n')) if (/^\d+$/.test(line.trim())) pids.add(Number(line.trim()));
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    if (pids.size > 0) logger.warn({ id, pids: [...pids] }, 'killed processes a failed restore left in the container cgroup');
    const deadline = Date.now() + 3000;
    while ([...pids].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    const runcDir = join(runcRoot, id);
    const prefixes = [join(bundleDir, '.criu.'), join(runcDir, 'criu-root')];
    const mounts = (await readFile('/proc/self/mounts', 'utf8'))
      .split('\n')
      .map((line) => unescapeMountPath(line.split(' ')[1] ?? ''))
      .filter((m) => prefixes.some((p) => m.startsWith(p)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await execFileAsync('umount', ['-l', m]).catch((err: unknown) => logger.warn({ err, mount: m }, 'cannot detach a CRIU mount'));
    for (const name of await readdir(bundleDir).catch(() => [] as string[])) {
      if (name.startsWith('.criu.')) await rm(join(bundleDir, name), { recursive: true, force: true }).catch(() => undefined);
    }
    // runc lists a state directory without state.json as a broken container.
    if (!(await stat(join(runcDir, 'state.json')).then(() => true, () => false))) await rm(runcDir, { recursive: true, force: true });
    for (const dir of dirs) await rmdir(dir).catch(() => undefined);
  } catch (err) {
    logger.warn({ err, id }, 'cleaning up after a failed restore');
  }
}

const execFileAsync = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** /proc/mounts escapes space, tab, newline and backslash as octal. */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

async function readCgroupsPath(bundleDir: string): Promise<string | undefined> {
  try {
    const spec = JSON.parse(await readFile(join(bundleDir, 'config.json'), 'utf8')) as { linux?: { cgroupsPath?: unknown } };
    const path = spec.linux?.cgroupsPath;
    // cgroupfs paths only ("/parent/name"); systemd's "slice:prefix:name" is not used by podserve.
    return typeof path === 'string' && path.startsWith('/') && !path.includes('..') ? path : undefined;
  } catch {
    return undefined;
  }
}

/** The container's cgroup directories: one per v1 controller hierarchy, or the v2 one. */
async function cgroupDirs(cgroupsPath: string): Promise<string[]> {
  const found: string[] = [];
  const roots = ['/sys/fs/cgroup', ...(await readdir('/sys/fs/cgroup').catch(() => [] as string[])).map((n) => join('/sys/fs/cgroup', n))];
  for (const root of roots) {
    const dir = join(root, cgroupsPath);
    if (await stat(join(dir, 'cgroup.procs')).then(() => true, () => false)) found.push(dir);
  }
  return found;
}

function criuFailure(runtimeName: string, verb: string, runtimeText: string, criuErrors: string[]): RuntimeError {
  const text = stripLogFileHint(runtimeText);
  const criu = criuErrors.length > 0 ? `: CRIU: ${criuErrors.join('; ')}` : '';
  return new RuntimeError(`${runtimeName} ${verb} failed: ${text}${criu}`, criuErrors.length > 0 ? criuErrors.join('; ') : text);
}

/** runc says "criu failed: type DUMP errno 0\nlog file: <path>"; the log is read (and removed) by podserve. */
function stripLogFileHint(text: string): string {
  return text.replace(/\s*log file:\s*\S+\s*$/s, '').trim();
}

/** The error text of runc's logrus output on stderr (text or JSON lines), else its last line. */
export function runcErrorText(stderr: string): string {
  let found: string | undefined;
  for (const line of stderr.split('\n')) {
    const text = /\blevel=(?:error|fatal)\s+msg="((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
    if (text !== undefined) {
      try {
        found = JSON.parse(`"${text}"`) as string;
      } catch {
        found = text;
      }
      continue;
    }
    try {
      const entry = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if ((entry.level === 'error' || entry.level === 'fatal') && typeof entry.msg === 'string') found = entry.msg;
    } catch {
      // Not JSON.
    }
  }
  return (found ?? stderr.trim().split('\n').pop() ?? '').trim();
}

/** CRIU's `Error (file:line): …` lines from one of its logs (at most the last 5, timestamps dropped). */
export async function criuLogErrors(logPath: string): Promise<string[]> {
  let content: string;
  try {
    content = await readFile(logPath, 'utf8');
  } catch {
    return [];
  }
  return parseCriuLogErrors(content);
}

export function parseCriuLogErrors(content: string): string[] {
  const errors: string[] = [];
  for (const line of content.split('\n')) {
    const match = /^(?:\(\s*[\d.]+\)\s*)?(?:\d+:\s*)?(Error \(.*)$/.exec(line.trim());
    // Without CAP_SYS_RESOURCE CRIU logs this at error level on every run and carries on: not the reason.
    if (match?.[1] && !/rlimit: Can't setup RLIMIT_NOFILE for self/.test(match[1])) errors.push(match[1].trim());
  }
  return errors.slice(-5);
}

/** Probes a CRIU binary: `--version` for the version, then `check` for whether it works on this kernel. */
export async function probeCriu(path: string, env: Record<string, string>, logger: Logger): Promise<CriuInfo> {
  const opts = { env, timeoutMs: 20_000, logger };
  let versionOut;
  try {
    versionOut = await runCommand(path, ['--version'], opts);
  } catch (err) {
    return { path, version: '', versionNumber: 0, available: false, error: `cannot run CRIU (${path}): ${err instanceof Error ? err.message : String(err)}` };
  }
  const version = /Version:\s*(\S+)/i.exec(versionOut.stdout)?.[1] ?? '';
  const versionNumber = criuVersionNumber(version);
  if (versionOut.exitCode !== 0 || versionNumber === 0) {
    const text = (versionOut.stderr || versionOut.stdout).trim();
    return { path, version, versionNumber, available: false, error: `CRIU (${path}) --version failed: ${text || `exit status ${versionOut.exitCode}`}` };
  }
  if (versionNumber < MIN_CRIU_VERSION) {
    return { path, version, versionNumber, available: false, error: `checkpoint/restore requires at least CRIU ${MIN_CRIU_VERSION}, ${path} is ${version}` };
  }
  const check = await runCommand(path, ['check'], opts).catch((err: unknown) => ({ exitCode: -1, stdout: '', stderr: String(err), timedOut: false }));
  if (check.exitCode !== 0) {
    const errors = parseCriuLogErrors(check.stderr);
    const text = errors.length > 0 ? errors.join('; ') : (check.stderr || check.stdout).trim();
    return { path, version, versionNumber, available: false, error: `CRIU ${version} (${path}) does not work on this host: ${text}` };
  }
  return { path, version, versionNumber, available: true };
}

/** "4.1.1" → 40101, as CRIU and Podman compare versions. */
export function criuVersionNumber(version: string): number {
  const match = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(version);
  if (!match) return 0;
  return Number(match[1]) * 10000 + Number(match[2]) * 100 + Number(match[3] ?? 0);
}

// ---- stats-dump / stats-restore ----------------------------------------------------------------------------

const IMG_SERVICE_MAGIC = 0x55105940;
const STATS_MAGIC = 0x57093306;

/**
 * Reads CRIU's stats file (`stats-dump` or `stats-restore` in the work path): two magics, a size, then a
 * protobuf `stats_entry { dump_stats_entry dump = 1; restore_stats_entry restore = 2; }`.
 * Returns null when the file is missing or not a stats image.
 */
export async function readCriuStatistics(file: string): Promise<CriuStatistics | null> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return null;
  }
  return parseCriuStatistics(buf);
}

export function parseCriuStatistics(buf: Buffer): CriuStatistics | null {
  if (buf.length < 12 || buf.readUInt32LE(0) !== IMG_SERVICE_MAGIC || buf.readUInt32LE(4) !== STATS_MAGIC) return null;
  const size = buf.readUInt32LE(8);
  if (12 + size > buf.length) return null;
  const entry = decodeFields(buf.subarray(12, 12 + size));
  const dump = entry.get(1);
  const restore = entry.get(2);
  const stats: CriuStatistics = {};
  if (dump instanceof Buffer) {
    const d = decodeFields(dump);
    const names: [number, keyof CriuStatistics][] = [
      [1, 'freezing_time'],
      [2, 'frozen_time'],
      [3, 'memdump_time'],
      [4, 'memwrite_time'],
      [5, 'pages_scanned'],
      [7, 'pages_written'],
    ];
    for (const [field, name] of names) {
      const value = d.get(field);
      if (typeof value === 'number' && value !== 0) stats[name] = value;
    }
  }
  if (restore instanceof Buffer) {
    const r = decodeFields(restore);
    const names: [number, keyof CriuStatistics][] = [
      [1, 'pages_compared'],
      [2, 'pages_skipped_cow'],
      [3, 'forking_time'],
      [4, 'restore_time'],
      [5, 'pages_restored'],
    ];
    for (const [field, name] of names) {
      const value = r.get(field);
      if (typeof value === 'number' && value !== 0) stats[name] = value;
    }
  }
  return stats;
}

/** Minimal protobuf decoding: varints as numbers, length-delimited fields as Buffers; last one wins. */
function decodeFields(buf: Buffer): Map<number, number | Buffer> {
  const fields = new Map<number, number | Buffer>();
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= buf.length) throw new Error('truncated varint');
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('varint too long');
    }
  };
  try {
    while (pos < buf.length) {
      const key = varint();
      const field = Math.floor(key / 8);
      switch (key & 7) {
        case 0:
          fields.set(field, varint());
          break;
        case 1:
          pos += 8;
          break;
        case 2: {
          const len = varint();
          fields.set(field, buf.subarray(pos, pos + len));
          pos += len;
          break;
        }
        case 5:
          pos += 4;
          break;
        default:
          return fields;
      }
    }
  } catch {
    // A truncated file: keep what was read.
  }
  return fields;
}
