/**
 * OCIRuntime implemented the way Podman 4.3.1 does it (libpod/oci_conmon_*.go): conmon monitors each
 * container and exec session, every other operation is a plain runtime (runc) invocation.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConflictError, InternalError, RuntimeError, Sentinel } from '../errors.js';
import { connectAttachSocket } from './attach.js';
import { cleanupFailedRestore, probeCriu, restoreConmonArgs, restoreFailure, runCheckpoint, type CheckpointOutcome, type CheckpointSpec, type CriuInfo, type RestoreSpec } from './checkpoint.js';
import {
  ConmonProcess,
  conmonLogLevel,
  containerConmonArgs,
  execConmonArgs,
  type PipeMessage,
} from './conmon-process.js';
import {
  exitFilePath,
  isPidAlive,
  processName,
  readExitFile,
  readPidFile,
  waitExitFile,
  waitPidExit,
  writeCtlMessage,
} from './files.js';
import {
  buildRuntimeEnv,
  OciRuntimeError,
  parseRuntimeJsonLog,
  parseRuntimeTextLog,
  parseRuntimeVersion,
  runCommand,
  type CommandResult,
} from './runtime-cli.js';
import type {
  AttachConnection,
  ConmonInfo,
  ContainerRunSpec,
  CreateResult,
  ExecResult,
  ExecSessionSpec,
  ExecTarget,
  ExitFileInfo,
  OCIRuntime,
  RuntimeInfo,
  RuntimeState,
  StopOptions,
} from './types.js';

export interface ConmonRuntimeOptions {
  /** Path of the OCI runtime binary, e.g. /usr/sbin/runc. */
  runtimePath: string;
  /** Its name as shown by /info and in error messages ("runc"). */
  runtimeName: string;
  conmonPath: string;
  /** The daemon's volatile root; scratch files (runc update resources) go here. */
  runRoot: string;
  logger: Logger;
  /** CRIU binary handed to runc for checkpoint/restore (`runc --criu`); default "criu" from PATH. */
  criuPath?: string;
  /** Global flags for every runtime invocation, e.g. ['--root', '/run/podserve/runc'] (containers.conf runtime_flags). */
  runtimeFlags?: string[];
  /** Timeout for runtime verbs (default 30 s). */
  runtimeTimeoutMs?: number;
  /** How long conmon may take to report a created container or exec (default 240 s, Podman's ContainerCreateTimeout). */
  createTimeoutMs?: number;
  /** Environment the conmon/runc environment is derived from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

const KILL_WAIT_MS = 5000;
/** How often liveness is polled when no exit file can wake the wait (conmon gone, exec sessions). */
const PID_POLL_MS = 100;
/** Slower liveness polling next to the exit-file watch: only matters if conmon died. */
const PID_FALLBACK_POLL_MS = 500;
/** After the process is gone, how long to still wait for conmon's exit file. */
const EXIT_FILE_GRACE_MS = 2000;

export class ConmonRuntime implements OCIRuntime {
  readonly name: string;
  readonly path: string;
  private readonly conmonPath: string;
  private readonly runRoot: string;
  private readonly logger: Logger;
  private readonly runtimeFlags: string[];
  private readonly runtimeTimeoutMs: number;
  private readonly createTimeoutMs: number;
  private readonly env: Record<string, string>;
  readonly criuPath?: string;
  private runtimeInfoCache?: Promise<RuntimeInfo>;
  private conmonInfoCache?: Promise<ConmonInfo>;

  constructor(opts: ConmonRuntimeOptions) {
    this.name = opts.runtimeName;
    this.path = opts.runtimePath;
    this.conmonPath = opts.conmonPath;
    this.runRoot = opts.runRoot;
    this.logger = opts.logger;
    this.criuPath = opts.criuPath;
    this.runtimeFlags = opts.runtimeFlags ?? [];
    this.runtimeTimeoutMs = opts.runtimeTimeoutMs ?? 30_000;
    this.createTimeoutMs = opts.createTimeoutMs ?? 240_000;
    this.env = buildRuntimeEnv(opts.env ?? process.env);
  }

  // ---- runtime verbs -------------------------------------------------------------------------------

  private run(args: string[], timeoutMs = this.runtimeTimeoutMs): Promise<CommandResult> {
    return runCommand(this.path, [...this.runtimeFlags, ...args], { env: this.env, timeoutMs, logger: this.logger });
  }

  /** Run a verb; a non-zero exit becomes an OciRuntimeError carrying the runtime's stderr. */
  private async runChecked(args: string[]): Promise<CommandResult> {
    const result = await this.run(args);
    if (result.exitCode !== 0) throw new OciRuntimeError(this.name, runtimeMessage(result));
    return result;
  }

  async startContainer(id: string): Promise<void> {
    await this.runChecked(['start', id]);
  }

  async killContainer(id: string, signal: number, all = false): Promise<void> {
    const result = await this.run(['kill', ...(all ? ['--all'] : []), id, String(signal)]);
    if (result.exitCode === 0) return;
    const message = runtimeMessage(result);
    if (isNotRunningMessage(message)) {
      throw new ConflictError(Sentinel.stateImproper, `can only kill running containers. ${id} is not running: ${Sentinel.stateImproper}`);
    }
    throw new OciRuntimeError(this.name, message);
  }

  async stopContainer(id: string, timeoutSec: number, stopSignal: number, opts: StopOptions = {}): Promise<void> {
    const current = await this.state(id);
    if (!current || current.status === 'stopped' || current.pid <= 0) return;
    const pid = current.pid;
    if (timeoutSec > 0) {
      if (!(await this.signalForStop(id, stopSignal, opts.all))) return;
      // A frozen cgroup holds signals: thaw it so the processes can act on the one just sent.
      if (current.status === 'paused') await this.thaw(id);
      if (await this.waitStopped(pid, id, opts.exitDir, timeoutSec * 1000)) return;
      this.logger.info({ id, timeoutSec, stopSignal }, 'container did not stop in time, sending SIGKILL');
    }
    if (!(await this.signalForStop(id, 9, opts.all))) return;
    if (timeoutSec <= 0 && current.status === 'paused') await this.thaw(id);
    if (!(await this.waitStopped(pid, id, opts.exitDir, KILL_WAIT_MS))) {
      throw new InternalError(`timed out waiting for container ${id} to terminate after SIGKILL`);
    }
  }

  /** Resume a container that is still paused (runc thaws by itself when it delivers SIGKILL). */
  private async thaw(id: string): Promise<void> {
    try {
      await this.unpauseContainer(id);
    } catch (err) {
      const now = await this.state(id).catch(() => null);
      if (now?.status === 'paused') throw err;
    }
  }

  /** Signal for stop; false when the container turned out to be stopped already (a race with its exit). */
  private async signalForStop(id: string, signal: number, all?: boolean): Promise<boolean> {
    try {
      await this.killContainer(id, signal, all);
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      const now = await this.state(id).catch(() => null);
      if (!now || now.status === 'stopped') return false;
      throw err;
    }
  }

  /**
   * Wait for a container's process to end. conmon's exit file is the event (it is written once the exit
   * status is known and output is drained, so the engine can read it right away); liveness polling is the
   * fallback for a conmon that is gone.
   */
  private async waitStopped(pid: number, id: string, exitDir: string | undefined, timeoutMs: number): Promise<boolean> {
    if (!exitDir) return waitPidExit(pid, timeoutMs, PID_POLL_MS);
    const abort = new AbortController();
    try {
      const byExitFile = waitExitFile(exitDir, id, timeoutMs, abort.signal).then((info) => info !== null);
      const byPid = waitPidExit(pid, timeoutMs, PID_FALLBACK_POLL_MS, abort.signal).then(async (gone) => {
        if (!gone || abort.signal.aborted) return gone;
        // The process is gone; give conmon a moment to record the exit before answering.
        await waitExitFile(exitDir, id, EXIT_FILE_GRACE_MS, abort.signal);
        return true;
      });
      return await Promise.race([byExitFile.then((done) => done || byPid), byPid]);
    } finally {
      abort.abort();
    }
  }

  async deleteContainer(id: string): Promise<void> {
    const result = await this.run(['delete', '--force', id]);
    if (result.exitCode === 0) return;
    const message = runtimeMessage(result);
    if (isDoesNotExistMessage(message)) return;
    throw new OciRuntimeError(this.name, message);
  }

  async pauseContainer(id: string): Promise<void> {
    await this.runChecked(['pause', id]);
  }

  async unpauseContainer(id: string): Promise<void> {
    await this.runChecked(['resume', id]);
  }

  async state(id: string): Promise<RuntimeState | null> {
    const result = await this.run(['state', id]);
    if (result.exitCode !== 0) {
      const message = runtimeMessage(result);
      if (isDoesNotExistMessage(message)) return null;
      throw new OciRuntimeError(this.name, message);
    }
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(result.stdout) as Record<string, unknown>;
    } catch {
      throw new RuntimeError(`${this.name} state ${id}: invalid JSON`, result.stdout.slice(0, 500));
    }
    return {
      id: String(raw.id ?? id),
      status: String(raw.status ?? 'stopped') as RuntimeState['status'],
      pid: typeof raw.pid === 'number' ? raw.pid : 0,
      bundle: String(raw.bundle ?? ''),
      rootfs: String(raw.rootfs ?? ''),
      created: String(raw.created ?? ''),
      raw,
    };
  }

  async updateResources(id: string, resources: Record<string, unknown>): Promise<void> {
    await mkdir(this.runRoot, { recursive: true });
    const file = join(this.runRoot, `update-${id.slice(0, 12)}-${randomBytes(6).toString('hex')}.json`);
    await writeFile(file, JSON.stringify(resources), { mode: 0o600 });
    try {
      await this.runChecked(['update', '--resources', file, id]);
    } finally {
      await rm(file, { force: true });
    }
  }

  // ---- create ------------------------------------------------------------------------------------------

  async createContainer(spec: ContainerRunSpec): Promise<CreateResult> {
    const timeoutMs = spec.timeoutMs ?? this.createTimeoutMs;
    await Promise.all([mkdir(spec.runDir, { recursive: true }), mkdir(spec.exitDir, { recursive: true })]);
    const pidFile = join(spec.runDir, 'pidfile');
    const conmonPidFile = join(spec.runDir, 'conmon.pid');
    const ociLog = join(spec.runDir, 'oci-log');
    // Files of a previous run of the same container would be mistaken for this one's.
    await Promise.all(
      [pidFile, conmonPidFile, ociLog, exitFilePath(spec.exitDir, spec.id)].map((f) => rm(f, { force: true })),
    );

    const args = containerConmonArgs({
      ctrId: spec.id,
      uuid: spec.id,
      runtimePath: this.path,
      bundleDir: spec.bundleDir,
      pidFile,
      name: spec.name,
      exitDir: spec.exitDir,
      runtimeFlags: this.runtimeFlags,
      logDriver: spec.logDriver === 'none' ? 'none' : `k8s-file:${spec.logPath}`,
      logLevel: conmonLogLevel(this.logger.level),
      logSizeMax: spec.logSizeMax,
      ociLog,
      conmonPidFile,
      exitCommand: spec.exitCommand,
      exitDelay: spec.exitDelay,
      terminal: spec.terminal,
      stdin: spec.stdin,
    });
    if (spec.restore) args.push(...restoreConmonArgs(spec.restore, this.criuPath ?? 'criu'));
    const conmon = new ConmonProcess(this.conmonPath, args, {
      env: this.env,
      cwd: spec.bundleDir,
      withAttachPipe: false,
      logger: this.logger,
    });
    try {
      await conmon.begin(timeoutMs);
      const message = await conmon.readMessage(conmon.sync, timeoutMs, 'sync');
      if (message.data < 0) throw await this.reportedError(message, ociLog);
      const conmonPid = await readPidFile(conmonPidFile);
      if (conmonPid === null) throw new RuntimeError('conmon did not write its pid file', conmonPidFile);
      this.logger.debug({ id: spec.id, pid: message.data, conmonPid }, 'container created');
      return { pid: message.data, conmonPid };
    } catch (err) {
      conmon.kill();
      await this.cleanupFailedCreate(spec.id, conmonPidFile);
      throw err;
    } finally {
      conmon.close();
    }
  }

  /** The runtime's own error: its JSON log when present (runc's message), else what conmon relayed. */
  private async reportedError(message: PipeMessage, ociLog: string): Promise<RuntimeError> {
    let fromLog: string | undefined;
    try {
      fromLog = parseRuntimeJsonLog(await readFile(ociLog, 'utf8'));
    } catch {
      fromLog = undefined;
    }
    const text = fromLog ?? message.message ?? '';
    if (!text.trim()) {
      return new RuntimeError(`${this.name}: container create failed (no logs from conmon)`, 'container create failed (no logs from conmon)');
    }
    return new OciRuntimeError(this.name, text);
  }

  /** Leave nothing behind after a failed create: no runtime state, no monitor. */
  private async cleanupFailedCreate(id: string, conmonPidFile: string): Promise<void> {
    await this.killMonitor(conmonPidFile);
    await this.deleteContainer(id).catch((err: unknown) => this.logger.warn({ err, id }, 'cleanup after failed create'));
  }

  // ---- exit files, attach, resize --------------------------------------------------------------------

  exitFilePath(exitDir: string, id: string): string {
    return exitFilePath(exitDir, id);
  }

  readExitFile(exitDir: string, id: string): Promise<ExitFileInfo | null> {
    return readExitFile(exitDir, id);
  }

  waitExitFile(exitDir: string, id: string, timeoutMs: number, signal?: AbortSignal): Promise<ExitFileInfo | null> {
    return waitExitFile(exitDir, id, timeoutMs, signal);
  }

  attachSocketPath(bundleDir: string): string {
    return join(bundleDir, 'attach');
  }

  attach(bundleDir: string): Promise<AttachConnection> {
    return connectAttachSocket(this.attachSocketPath(bundleDir), { logger: this.logger });
  }

  attachResize(bundleDir: string, height: number, width: number): Promise<void> {
    return writeCtlMessage(join(bundleDir, 'ctl'), 1, height, width);
  }

  async conmonAlive(conmonPid: number): Promise<boolean> {
    if (!isPidAlive(conmonPid)) return false;
    return (await processName(conmonPid)) === 'conmon';
  }

  // ---- exec --------------------------------------------------------------------------------------------

  async execContainer(ctr: ExecTarget, session: ExecSessionSpec): Promise<ExecResult> {
    const dir = session.bundleDir;
    const timeoutMs = session.timeoutMs ?? this.createTimeoutMs;
    const exitDir = join(dir, 'exit');
    await mkdir(exitDir, { recursive: true });
    const pidFile = join(dir, 'exec_pid');
    const conmonPidFile = join(dir, 'conmon.pid');
    const ociLog = join(dir, 'oci-log');
    await Promise.all([pidFile, conmonPidFile, ociLog, exitFilePath(exitDir, ctr.id)].map((f) => rm(f, { force: true })));
    const processSpec = join(dir, `exec-process-${randomBytes(6).toString('hex')}`);
    const processJson: Record<string, unknown> = { ...session.process, terminal: session.terminal };
    if (session.terminal && session.consoleSize) {
      processJson.consoleSize = { height: session.consoleSize.height, width: session.consoleSize.width };
    }
    await writeFile(processSpec, JSON.stringify(processJson), { mode: 0o644 });

    const args = execConmonArgs({
      ctrId: ctr.id,
      uuid: session.sessionId,
      runtimePath: this.path,
      bundleDir: dir,
      pidFile,
      name: ctr.name,
      exitDir,
      runtimeFlags: this.runtimeFlags,
      logDriver: 'none',
      logLevel: conmonLogLevel(this.logger.level),
      ociLog,
      conmonPidFile,
      exitCommand: session.exitCommand,
      exitDelay: session.exitDelay,
      terminal: session.terminal,
      attachStdin: session.attachStdin,
      processSpec,
    });
    const conmon = new ConmonProcess(this.conmonPath, args, { env: this.env, cwd: dir, withAttachPipe: true, logger: this.logger });
    let conn: AttachConnection | null = null;
    try {
      await conmon.begin(timeoutMs);
      // conmon has set up attach, ctl and winsz; the runtime waits for the second start byte.
      const ready = await conmon.readMessage(conmon.attachPipe as NonNullable<typeof conmon.attachPipe>, timeoutMs, 'attach');
      if (ready.data < 0) throw await this.reportedError(ready, ociLog);
      if (!session.detach) conn = await this.attach(dir);
      if (session.preStart) await session.preStart(conn);
      await conmon.writeStartByte();
      const started = await conmon.readMessage(conmon.sync, timeoutMs, 'sync');
      if (started.data < 0) throw await this.reportedError(started, ociLog);
      this.logger.debug({ id: ctr.id, sessionId: session.sessionId, pid: started.data }, 'exec session started');
      return { pid: started.data, attach: conn };
    } catch (err) {
      conn?.close();
      conmon.kill();
      await this.killMonitor(conmonPidFile);
      throw err;
    } finally {
      conmon.close();
    }
  }

  /**
   * Kill a conmon monitor together with the child it forked to run the runtime. That child may still be
   * waiting for the exec start byte, and it takes EOF on the start pipe as "go"; its parent-death signal
   * does not cover a child that had not set it up yet. The monitor leads its own process group (setsid),
   * so signalling the group reaches both. Containers are not in it (runc gives them their own session).
   */
  private async killMonitor(conmonPidFile: string): Promise<void> {
    const pid = await readPidFile(conmonPidFile).catch(() => null);
    if (pid === null || !(await this.conmonAlive(pid))) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await waitPidExit(pid, KILL_WAIT_MS, 20);
  }

  execResize(sessionBundleDir: string, height: number, width: number): Promise<void> {
    return writeCtlMessage(join(sessionBundleDir, 'ctl'), 1, height, width);
  }

  async readExecExitCode(sessionBundleDir: string, ctrId: string, waitMs = 0): Promise<number | null> {
    const info = await waitExitFile(join(sessionBundleDir, 'exit'), ctrId, waitMs);
    return info ? info.exitCode : null;
  }

  async execStop(pid: number, timeoutSec: number): Promise<void> {
    if (!isPidAlive(pid)) return;
    if (timeoutSec > 0) {
      if (!signalPid(pid, 'SIGTERM')) return;
      if (await waitPidExit(pid, timeoutSec * 1000, PID_POLL_MS)) return;
    }
    if (!signalPid(pid, 'SIGKILL')) return;
    if (!(await waitPidExit(pid, KILL_WAIT_MS, PID_POLL_MS))) {
      throw new InternalError(`timed out waiting for exec session PID ${pid} to stop after SIGKILL`);
    }
  }

  // ---- checkpoint / restore (src/oci/checkpoint.ts) ----------------------------------------------------

  private criuInfoCache?: { at: number; info: Promise<CriuInfo> };

  criuInfo(): Promise<CriuInfo> {
    const cached = this.criuInfoCache;
    // A working CRIU is probed once; a failing one again after a while (it may have been installed meanwhile).
    if (cached && Date.now() - cached.at < 10_000) return cached.info;
    const info = probeCriu(this.criuPath ?? 'criu', this.env, this.logger);
    this.criuInfoCache = { at: Date.now(), info };
    void info.then((i) => {
      if (i.available && this.criuInfoCache?.info === info) this.criuInfoCache = { at: Number.POSITIVE_INFINITY, info };
    });
    return info;
  }

  checkpointContainer(id: string, spec: CheckpointSpec): Promise<CheckpointOutcome> {
    return runCheckpoint(
      {
        runtimePath: this.path,
        runtimeName: this.name,
        runtimeFlags: this.runtimeFlags,
        criuPath: this.criuPath ?? 'criu',
        env: this.env,
        // Dumping a large container takes a while; runc's own timeout is not the limit here.
        timeoutMs: Math.max(this.runtimeTimeoutMs, 600_000),
        logger: this.logger,
      },
      id,
      spec,
    );
  }

  async restoreContainer(spec: ContainerRunSpec, restore: RestoreSpec): Promise<CreateResult & CheckpointOutcome> {
    const started = process.hrtime.bigint();
    try {
      const created = await this.createContainer({ ...spec, restore });
      return { ...created, durationUs: Number((process.hrtime.bigint() - started) / 1000n) };
    } catch (err) {
      const failure = await restoreFailure(this.name, err, spec.bundleDir);
      await cleanupFailedRestore({ id: spec.id, bundleDir: spec.bundleDir, runcRoot: this.runcRoot(), logger: this.logger });
      throw failure;
    }
  }

  /** runc's state directory: its --root flag when configured, else its default for root. */
  private runcRoot(): string {
    const i = this.runtimeFlags.findIndex((f) => f === '--root' || f.startsWith('--root='));
    if (i < 0) return '/run/runc';
    const flag = this.runtimeFlags[i]!;
    return flag.includes('=') ? flag.slice('--root='.length) : (this.runtimeFlags[i + 1] ?? '/run/runc');
  }

  // ---- info ------------------------------------------------------------------------------------------

  runtimeInfo(): Promise<RuntimeInfo> {
    this.runtimeInfoCache ??= this.loadRuntimeInfo().catch((err: unknown) => {
      this.runtimeInfoCache = undefined;
      throw err;
    });
    return this.runtimeInfoCache;
  }

  private async loadRuntimeInfo(): Promise<RuntimeInfo> {
    const result = await runCommand(this.path, ['--version'], { env: this.env, timeoutMs: this.runtimeTimeoutMs, logger: this.logger });
    if (result.exitCode !== 0) throw new OciRuntimeError(this.name, runtimeMessage(result));
    const parsed = parseRuntimeVersion(result.stdout);
    return { name: this.name, path: this.path, ...parsed, versionOutput: result.stdout.trim(), package: await this.packageOf(this.path) };
  }

  conmonInfo(): Promise<ConmonInfo> {
    this.conmonInfoCache ??= this.loadConmonInfo().catch((err: unknown) => {
      this.conmonInfoCache = undefined;
      throw err;
    });
    return this.conmonInfoCache;
  }

  private async loadConmonInfo(): Promise<ConmonInfo> {
    const result = await runCommand(this.conmonPath, ['--version'], { env: this.env, timeoutMs: this.runtimeTimeoutMs, logger: this.logger });
    if (result.exitCode !== 0) throw new RuntimeError('conmon --version failed', runtimeMessage(result));
    // Podman shows the two lines joined: "conmon version 2.1.6, commit: unknown".
    const version = result.stdout.trim().replace('\n', ', ');
    return { path: this.conmonPath, version, package: await this.packageOf(this.conmonPath) };
  }

  /** The distribution package owning a binary, as Podman reports it (dpkg, then rpm); "" if unknown. */
  private async packageOf(path: string): Promise<string> {
    const opts = { env: this.env, timeoutMs: 10_000, logger: this.logger };
    try {
      const owner = await runCommand('dpkg', ['-S', path], opts);
      const name = owner.exitCode === 0 ? owner.stdout.split(':')[0]?.trim() : undefined;
      if (name) {
        const query = await runCommand('dpkg-query', ['-f', '${Package}_${Version}_${Architecture}', '-W', name], opts);
        if (query.exitCode === 0 && query.stdout.trim()) return query.stdout.trim();
      }
    } catch {
      // dpkg missing: try rpm.
    }
    try {
      const rpm = await runCommand('rpm', ['-q', '--qf', '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}', '-f', path], opts);
      if (rpm.exitCode === 0 && rpm.stdout.trim()) return rpm.stdout.trim();
    } catch {
      // Neither packager.
    }
    return '';
  }
}

function signalPid(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

/** The runtime's error from its stderr: logrus text lines (`level=error msg="…"`), JSON lines, or plain text. */
function runtimeMessage(result: CommandResult): string {
  const fromLog = parseRuntimeJsonLog(result.stderr) ?? parseRuntimeTextLog(result.stderr);
  return (fromLog ?? result.stderr).trim() || `exit status ${result.exitCode}`;
}

function isDoesNotExistMessage(message: string): boolean {
  return /container does not exist|does not exist/i.test(message);
}

function isNotRunningMessage(message: string): boolean {
  return /not running|process already finished|container not running|does not exist/i.test(message);
}
