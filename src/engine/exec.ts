/**
 * Exec sessions as state machines (created → running → stopped), stored with the containers, run under conmon
 * like Podman's (`conmon --exec` with a process spec in a per-session bundle `<container bundle>/<session id>`),
 * so an exit code is recorded however the session ends: by the attached start that waits for it, by a watch on
 * the session's exit file (detached starts, clients that went away or detached), by the container stopping
 * (its sessions are signalled alongside it, Podman's ExecStopContainer), or lazily on inspect for a session that
 * ended while no daemon watched (Podman's ExecUpdateStatus).
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from 'pino';
import { BadRequestError, ConflictError, InternalError, PodserveError, Sentinel, noSuchExec } from '../errors.js';
import { processExited } from '../oci/files.js';
import { OciRuntimeError } from '../oci/runtime-cli.js';
import type { AttachConnection } from '../oci/types.js';
import { generateExecProcess } from '../spec/process.js';
import type { OciProcess } from '../spec/ociTypes.js';
import { DEFAULT_DETACH_KEYS, parseDetachKeys } from '../stream/detach.js';
import { writeHijackError } from '../stream/hijack.js';
import { finishAttach, pumpAttach, type AttachEnd, type ConnectClient } from './attach.js';
import type { Engine } from './engine.js';
import { newId } from './names.js';
import type { Container, ExecConfig, ExecSession, ExecState } from './types.js';

/** What a client may set when creating a session (Docker's ExecConfig, as Podman reads it). */
export interface ExecCreateOptions {
  cmd: string[];
  /** "KEY=value" entries. */
  env?: string[];
  workDir?: string;
  user?: string;
  tty?: boolean;
  attachStdin?: boolean;
  attachStdout?: boolean;
  attachStderr?: boolean;
  privileged?: boolean;
  /** Detach sequence; empty or absent = the default ctrl-p,ctrl-q (exec sessions cannot disable detaching). */
  detachKeys?: string;
}

export interface TerminalSize {
  height: number;
  width: number;
}

/** Exit codes Podman gives sessions that never ran their command (libpod/define/exec_codes.go). */
export const ExecErrorCode = {
  generic: 125,
  cannotInvoke: 126,
  notFound: 127,
} as const;

/** How long an ended session's exit file may take to appear (Podman's readExecExitCode waits 5 s). */
const EXIT_FILE_WAIT_MS = 5000;
/** The same wait when the container itself is gone: its sessions died with it, conmon writes at once. */
const REAP_WAIT_MS = 1000;
/** How long a container stop waits for exec sessions that are being started. */
const START_WAIT_MS = 5000;

const managers = new WeakMap<Engine, ExecManager>();

/** The engine's exec sessions (created on first use; it hooks itself into the container lifecycle). */
export function execSessions(engine: Engine): ExecManager {
  let manager = managers.get(engine);
  if (!manager) {
    manager = new ExecManager(engine);
    managers.set(engine, manager);
  }
  return manager;
}

export class ExecManager {
  private readonly log: Logger;
  /**
   * Sessions between the start request and their recorded PID (or failure): resizable, not startable again, and
   * waited for by a container stop, which Podman orders after the start through the container lock.
   */
  private readonly starting = new Map<string, { containerId: string; settled: Promise<void>; settle: () => void }>();
  /** Sessions whose output an attached start is streaming in this process. */
  private readonly attached = new Set<string>();
  /** Exit-file watches of running sessions nobody is attached to. */
  private readonly exitWatches = new Map<string, FSWatcher>();

  constructor(private readonly engine: Engine) {
    this.log = engine.logger.child({ part: 'exec' });
    engine.containers.setExecHooks({
      startsSettled: (c) => this.startsSettled(c),
      stopping: (c, timeoutSec) => this.stopSessionsOf(c, timeoutSec),
      exited: (c) => this.reapSessionsOf(c),
    });
  }

  // ------------------------------------------------------------------------------------------ create / read

  /** Podman's ExecCreate: the container must be running; returns the new session's id. */
  create(nameOrId: string, opts: ExecCreateOptions): string {
    const c = this.engine.containers.lookup(nameOrId);
    for (const entry of opts.env ?? []) {
      if (entry.indexOf('=') <= 0) throw new BadRequestError(`environment variable "${entry}" badly formed, must be key=value`);
    }
    if (opts.cmd.length === 0) {
      throw new PodserveError(500, Sentinel.invalidArg, `must provide a non-empty command to start an exec session: ${Sentinel.invalidArg}`);
    }
    if (c.state.status === 'paused') throw new ConflictError(`cannot create exec session as container ${c.id} is paused`);
    if (c.state.status !== 'running') {
      throw new PodserveError(500, Sentinel.stateImproper, `can only create exec sessions on running containers: ${Sentinel.stateImproper}`);
    }
    // An invalid sequence is refused now rather than when the session starts.
    if (opts.detachKeys) parseDetachKeys(opts.detachKeys);
    const id = newId();
    const config: ExecConfig = {
      id,
      containerId: c.id,
      cmd: [...opts.cmd],
      env: [...(opts.env ?? [])],
      workDir: opts.workDir ?? '',
      user: opts.user ?? '',
      tty: opts.tty ?? false,
      attachStdin: opts.attachStdin ?? false,
      attachStdout: opts.attachStdout ?? false,
      attachStderr: opts.attachStderr ?? false,
      privileged: opts.privileged ?? false,
      ...(opts.detachKeys ? { detachKeys: opts.detachKeys } : {}),
      bundleDir: join(c.config.bundleDir, id),
    };
    this.engine.store.addExec({ id, containerId: c.id, config, state: { status: 'created', pid: 0, exitCode: 0 } });
    this.log.debug({ id, container: c.id, cmd: config.cmd }, 'exec session created');
    return id;
  }

  /** The session as stored (404 when unknown). */
  get(id: string): ExecSession {
    const found = this.engine.store.execById(id);
    if (!found) throw noSuchExec(id);
    return found;
  }

  /** The session with its state brought up to date: a running session whose process is gone gets its exit recorded. */
  async inspect(id: string): Promise<ExecSession> {
    const session = this.get(id);
    if (session.state.status === 'running' && !this.attached.has(id) && !this.starting.has(id)) {
      await this.updateStatus(session);
      return this.get(id);
    }
    return session;
  }

  /** Podman's ExecUpdateStatus: is the session's process still there? If not, record its exit. */
  private async updateStatus(session: ExecSession): Promise<boolean> {
    if (session.state.pid > 0 && !(await processExited(session.state.pid))) return true;
    const code = await this.engine.oci.readExecExitCode(session.config.bundleDir, session.containerId, REAP_WAIT_MS).catch(() => null);
    await this.recordExit(session.id, code ?? -1);
    return false;
  }

  private containerOf(session: ExecSession): Container {
    const c = this.engine.containers.tryLookup(session.containerId);
    if (!c) throw noSuchExec(session.id);
    return c;
  }

  // ------------------------------------------------------------------------------------------ start

  /** Checks shared by both kinds of start (Podman's ExecStartHandler, then execStartAndAttach). */
  private claim(id: string): { session: ExecSession; container: Container } {
    const session = this.get(id);
    const container = this.containerOf(session);
    if (container.state.status !== 'running') {
      throw new ConflictError(`cannot exec in a container that is not running; container ${container.id} is ${container.state.status}`);
    }
    const status = this.starting.has(id) ? 'running' : session.state.status;
    if (status !== 'created') {
      throw new PodserveError(
        500,
        Sentinel.execSessionStateInvalid,
        `can only start created exec sessions, while container ${container.id} session ${id} state is "${status}": ${Sentinel.execSessionStateInvalid}`,
      );
    }
    let settle!: () => void;
    const settled = new Promise<void>((resolve) => (settle = resolve));
    this.starting.set(id, { containerId: container.id, settled, settle });
    return { session, container };
  }

  /** Start without attaching (Detach: true): returns once the process runs; its exit is recorded when it comes. */
  async startDetached(id: string): Promise<void> {
    const { session, container } = this.claim(id);
    try {
      const process = await this.prepare(container, session);
      const result = await this.engine.oci.execContainer(
        { id: container.id, name: container.name },
        { sessionId: id, bundleDir: session.config.bundleDir, process, terminal: session.config.tty, attachStdin: session.config.attachStdin, detach: true },
      );
      this.markRunning(session, container, result.pid);
      this.watchExit(session);
    } catch (err) {
      this.recordFailure(session, err);
      throw err;
    } finally {
      this.endStart(id);
    }
  }

  /**
   * Start and attach (Podman's ExecHTTPStartAndAttach): `connect` is called once conmon's attach socket is
   * connected and before the process runs, so no output is lost; the connection is closed only after the exit
   * code was stored, so an inspect right after EOF sees it. Errors before `connect` are thrown (an ordinary error
   * reply); after it they are written on the connection.
   */
  async startAttached(id: string, opts: { size?: TerminalSize }, connect: ConnectClient): Promise<AttachEnd> {
    const { session, container } = this.claim(id);
    const { config } = session;
    const multiplexed = !config.tty;
    let client: Duplex | undefined;
    let conn: AttachConnection | null = null;
    try {
      if (!config.attachStdin && !config.attachStdout && !config.attachStderr) {
        throw new PodserveError(500, Sentinel.invalidArg, `must provide at least one stream to attach to: ${Sentinel.invalidArg}`);
      }
      const detachKeys = parseDetachKeys(config.detachKeys ?? DEFAULT_DETACH_KEYS);
      const process = await this.prepare(container, session);
      const size = config.tty && opts.size && (opts.size.height > 0 || opts.size.width > 0) ? opts.size : undefined;
      let result;
      try {
        result = await this.engine.oci.execContainer(
          { id: container.id, name: container.name },
          {
            sessionId: id,
            bundleDir: config.bundleDir,
            process,
            terminal: config.tty,
            ...(size ? { consoleSize: size } : {}),
            attachStdin: config.attachStdin,
            preStart: async (attach) => {
              conn = attach;
              client = connect();
            },
          },
        );
      } catch (err) {
        this.recordFailure(session, err);
        if (!client) throw err;
        this.log.debug({ err, id }, 'exec session failed to start');
        await writeHijackError(client, errorText(err), multiplexed);
        return 'failed';
      }
      conn = result.attach;
      this.attached.add(id);
      this.markRunning(session, container, result.pid);
      this.endStart(id);
      if (!conn || !client) throw new InternalError('exec session started without an attach connection');

      const end = await pumpAttach({
        conn,
        client,
        tty: config.tty,
        multiplexed,
        streams: { stdin: config.attachStdin, stdout: config.attachStdout, stderr: config.attachStderr },
        detachKeys,
        logger: this.log.child({ id }),
      });
      this.attached.delete(id);
      if (end.kind === 'output-ended') {
        // conmon closes the socket once the process is gone; its exit file follows.
        const code = await this.engine.oci.readExecExitCode(config.bundleDir, container.id, EXIT_FILE_WAIT_MS).catch(() => null);
        await this.recordExit(id, code ?? -1);
      } else {
        // Detached or abandoned: the process goes on; record its exit whenever it comes.
        this.watchExit(session);
      }
      await finishAttach(conn, client, end, multiplexed, this.log);
      return end.kind;
    } catch (err) {
      if (!client) {
        if (this.starting.has(id)) this.recordFailure(session, err);
        throw err;
      }
      (conn as AttachConnection | null)?.close();
      this.log.warn({ err, id }, 'exec attach failed after the hijack');
      await writeHijackError(client, errorText(err), multiplexed);
      return 'failed';
    } finally {
      this.endStart(id);
      this.attached.delete(id);
    }
  }

  /** The OCI process for `runc exec`, derived from the container's own (Podman's prepareProcessExec). */
  private async prepare(c: Container, session: ExecSession): Promise<Record<string, unknown>> {
    const { config } = session;
    const bundle = JSON.parse(await readFile(join(c.config.bundleDir, 'config.json'), 'utf8')) as { process: OciProcess };
    const root = c.state.mountPoint;
    const [passwd, group] = root
      ? await Promise.all([
          readFile(join(root, 'etc/passwd'), 'utf8').catch(() => undefined),
          readFile(join(root, 'etc/group'), 'utf8').catch(() => undefined),
        ])
      : [undefined, undefined];
    const env: Record<string, string> = {};
    for (const entry of config.env) {
      const eq = entry.indexOf('=');
      env[entry.slice(0, eq)] = entry.slice(eq + 1);
    }
    const process = generateExecProcess(
      { process: bundle.process, user: c.config.user, groups: c.config.spec.groups ?? undefined, passwd, group },
      { cmd: config.cmd, env, workingDir: config.workDir || undefined, user: config.user || undefined, tty: config.tty, privileged: config.privileged },
    );
    return process as unknown as Record<string, unknown>;
  }

  private endStart(id: string): void {
    this.starting.get(id)?.settle();
    this.starting.delete(id);
  }

  private markRunning(session: ExecSession, c: Container, pid: number): void {
    this.saveState(session.id, { status: 'running', pid, exitCode: 0 });
    this.engine.events.emit({ type: 'container', status: 'exec', id: c.id, name: c.name, image: c.config.imageName, attributes: { ...c.config.labels } });
    this.log.debug({ id: session.id, pid }, 'exec session running');
  }

  /** A start that failed: the session is over with Podman's code for why (125 generic, 126/127 from the runtime). */
  private recordFailure(session: ExecSession, err: unknown): void {
    let code: number = ExecErrorCode.generic;
    if (err instanceof OciRuntimeError) {
      if (err.kind === 'command-not-found') code = ExecErrorCode.notFound;
      else if (err.kind === 'permission-denied') code = ExecErrorCode.cannotInvoke;
    }
    const now = this.engine.store.execById(session.id);
    if (now) this.saveState(session.id, { status: 'stopped', pid: 0, exitCode: code });
    this.endStart(session.id);
    void this.removeBundle(session);
  }

  private saveState(id: string, state: ExecState): void {
    if (this.engine.store.execById(id)) this.engine.store.setExecState(id, state);
  }

  /** Once per session: stored as stopped with its code, `exec_died` emitted, its bundle removed. */
  private async recordExit(id: string, exitCode: number): Promise<void> {
    this.stopWatching(id);
    const session = this.engine.store.execById(id);
    if (!session || session.state.status !== 'running') return;
    this.engine.store.setExecState(id, { status: 'stopped', pid: 0, exitCode });
    const c = this.engine.containers.tryLookup(session.containerId);
    this.engine.events.emit({
      type: 'container',
      status: 'exec_died',
      id: session.containerId,
      name: c?.name ?? '',
      image: c?.config.imageName ?? '',
      attributes: { ...(c?.config.labels ?? {}) },
      containerExitCode: exitCode,
    });
    this.log.debug({ id, exitCode }, 'exec session ended');
    await this.removeBundle(session);
  }

  private async removeBundle(session: ExecSession): Promise<void> {
    await rm(session.config.bundleDir, { recursive: true, force: true }).catch((err: unknown) =>
      this.log.debug({ err, id: session.id }, 'removing an exec bundle failed'),
    );
  }

  // ------------------------------------------------------------------------------------------ exit watching

  /** Watches the session's exit file (written by its conmon) and records the exit when it appears. */
  private watchExit(session: ExecSession): void {
    if (this.exitWatches.has(session.id)) return;
    const exitDir = sessionExitDir(session.config.bundleDir);
    const check = (): void => {
      void this.engine.oci.readExecExitCode(session.config.bundleDir, session.containerId, 0).then(
        (code) => {
          if (code !== null) void this.recordExit(session.id, code);
        },
        () => undefined,
      );
    };
    try {
      const watcher = watch(exitDir, { persistent: false }, (_event, filename) => {
        if (filename === null || filename === session.containerId) check();
      });
      watcher.on('error', () => this.stopWatching(session.id));
      this.exitWatches.set(session.id, watcher);
    } catch (err) {
      this.log.debug({ err, id: session.id }, 'cannot watch an exec exit directory');
    }
    // It may have ended before the watch was armed.
    check();
  }

  private stopWatching(id: string): void {
    const watcher = this.exitWatches.get(id);
    if (!watcher) return;
    this.exitWatches.delete(id);
    watcher.close();
  }

  // ------------------------------------------------------------------------------------------ resize

  /**
   * Podman's exec resize: 409 when the container is not running (unless `ignoreNotRunning`), then the session must
   * be running (or starting: clients resize as soon as the start answered); a stopped one is an error unless
   * `ignoreNotRunning`.
   */
  async resize(id: string, size: TerminalSize, ignoreNotRunning: boolean): Promise<void> {
    const session = this.get(id);
    const c = this.containerOf(session);
    if (c.state.status !== 'running' && !ignoreNotRunning) {
      throw new ConflictError(`container "${id}" in wrong state "${c.state.status}"`);
    }
    const live = this.starting.has(id) || this.attached.has(id) || (session.state.status === 'running' && (await this.updateStatus(session)));
    if (!live) {
      if (ignoreNotRunning) return;
      throw new PodserveError(
        500,
        Sentinel.execSessionStateInvalid,
        `cannot resize session: cannot resize container ${c.id} exec session ${id} as it is not running: ${Sentinel.execSessionStateInvalid}`,
      );
    }
    try {
      await this.engine.oci.execResize(session.config.bundleDir, size.height, size.width);
    } catch (err) {
      throw new InternalError(`cannot resize session: ${errorText(err)}`);
    }
  }

  // ------------------------------------------------------------------------------------------ container hooks

  /** A container stop waits (briefly) for its sessions being started, as Podman's container lock orders them. */
  private async startsSettled(c: Container): Promise<void> {
    const starts = [...this.starting.values()].filter((s) => s.containerId === c.id).map((s) => s.settled);
    if (starts.length > 0) await Promise.race([Promise.all(starts), delay(START_WAIT_MS)]);
  }

  /** The container is being stopped: its running sessions get SIGTERM, then SIGKILL after the same timeout. */
  private async stopSessionsOf(c: Container, timeoutSec: number): Promise<void> {
    const running = this.engine.store.execsOf(c.id).filter((s) => s.state.status === 'running' && s.state.pid > 0);
    await Promise.all(
      running.map((s) =>
        this.engine.oci.execStop(s.state.pid, timeoutSec).catch((err: unknown) => this.log.warn({ err, id: s.id }, 'stopping an exec session failed')),
      ),
    );
  }

  /** The container's processes are gone, and with them its sessions': record how each ended. */
  private async reapSessionsOf(c: Container): Promise<void> {
    const running = this.engine.store.execsOf(c.id).filter((s) => s.state.status === 'running');
    await Promise.all(
      running.map(async (s) => {
        const code = await this.engine.oci.readExecExitCode(s.config.bundleDir, c.id, REAP_WAIT_MS).catch(() => null);
        await this.recordExit(s.id, code ?? -1);
      }),
    );
  }
}

/** Where a session's conmon writes its exit file (`<session bundle>/exit/<container id>`, as Podman lays it out). */
function sessionExitDir(bundleDir: string): string {
  return join(bundleDir, 'exit');
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
