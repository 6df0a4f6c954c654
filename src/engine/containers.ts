/**
 * Containers as state machines over the OCI runtime adapter: create → init (conmon + runc create) → start →
 * exit (learned from conmon's exit file) → cleanup, with restart policies, auto-removal, pause, kill, stop,
 * remove and recovery after a daemon restart. Every change of one container runs under that container's lock
 * and is written to the state store before anyone is told about it.
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readFile, rm, writeFile, unlink } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import { join } from 'node:path';
import { cliEntry } from '../paths.js';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config.js';
import { BadRequestError, ConflictError, PodserveError, noSuchContainer, stateImproper } from '../errors.js';
import type { OCIRuntime } from '../oci/types.js';
import type { SpecGenerator } from '../../schemas/containers.js';
import { generateOciConfig, type ImageConfigLike } from '../spec/oci.js';
import { parseSignal } from '../spec/signals.js';
import type { ImageStore } from '../image/store.js';
import type { CheckpointAccess } from './checkpoint.js';
import type { EventBus } from './events.js';
import { KeyedMutex } from './lock.js';
import { NAME_PATTERN, newId, randomName } from './names.js';
import { hostLimits } from './rlimits.js';
import { gatedExitCommand } from '../serving-mark.js';
import type { StateStore } from './store.js';
import { dateRFC3339Nano, nowRFC3339Nano } from './time.js';
import { ZERO_TIME, type Container, type ContainerConfig, type ContainerState, type ContainerStatus, type ExecConfig, type ExecState } from './types.js';

export type Store = StateStore<ContainerConfig, ContainerState, ExecConfig, ExecState>;

export interface ContainerManagerDeps {
  config: DaemonConfig;
  logger: Logger;
  store: Store;
  oci: OCIRuntime;
  images: ImageStore;
  events: EventBus;
}

/** The exec sessions' part in a container's stop and exit (src/engine/exec.ts registers it). */
export interface ContainerExecHooks {
  /** Exec sessions of the container being started right now have started or failed (bounded wait). */
  startsSettled(c: Container): Promise<void>;
  /** The container is being stopped: stop its exec sessions alongside (SIGTERM, SIGKILL after timeoutSec). */
  stopping(c: Container, timeoutSec: number): Promise<void>;
  /** The container's processes are gone: record how its exec sessions ended. */
  exited(c: Container): Promise<void>;
}

/** A 304: the container is already in the asked state (Podman answers 304 with no body). */
export class NotModified extends PodserveError {
  constructor(message: string) {
    super(304, message);
  }
}

const ACTIVE: readonly ContainerStatus[] = ['created', 'running', 'paused', 'stopped'];
const DEFAULT_STOP_TIMEOUT = 10;
const SIGKILL = 9;
/** Exit codes of containers removed meanwhile, for waiters that arrive late (docker run --rm). */
const REMEMBERED_EXITS = 1000;

/** The state of a container that never ran. */
export function freshState(): ContainerState {
  return {
    status: 'configured',
    pid: 0,
    conmonPid: 0,
    exitCode: 0,
    startedAt: ZERO_TIME,
    finishedAt: ZERO_TIME,
    oomKilled: false,
    error: '',
    restartCount: 0,
    stoppedByUser: false,
    mountPoint: '',
  };
}

export class ContainerManager {
  readonly exitDir: string;
  private readonly locks = new KeyedMutex();
  /** Emits 'change' (id, container | undefined when removed) after every stored state change. */
  private readonly changes = new EventEmitter();
  private readonly removedExitCodes = new Map<string, number>();
  /** Containers whose runtime state finalizeExit deleted since they last ran (a removal need not run the runtime again). */
  private readonly runtimeDeleted = new Set<string>();
  private exitWatcher: FSWatcher | undefined;
  private closed = false;
  private execHooks: ContainerExecHooks | undefined;

  constructor(private readonly deps: ContainerManagerDeps) {
    this.exitDir = join(deps.config.runRoot, 'exits');
    this.changes.setMaxListeners(0);
  }

  private get log(): Logger {
    return this.deps.logger;
  }

  setExecHooks(hooks: ContainerExecHooks): void {
    this.execHooks = hooks;
  }

  // ------------------------------------------------------------------------------------------ lookup

  lookup(nameOrId: string): Container {
    const found = this.deps.store.lookupContainer(nameOrId);
    if (!found) throw noSuchContainer(nameOrId);
    return found;
  }

  tryLookup(nameOrId: string): Container | undefined {
    return this.deps.store.lookupContainer(nameOrId);
  }

  list(): Container[] {
    return this.deps.store.containers();
  }

  usesImage(imageId: string): boolean {
    return this.list().some((c) => c.config.imageId === imageId);
  }

  // ------------------------------------------------------------------------------------------ start-up

  /** Recovery: reconcile every stored container with runc and conmon's exit files, then watch for exits. */
  async open(): Promise<void> {
    await mkdir(this.exitDir, { recursive: true, mode: 0o700 });
    this.exitWatcher = watch(this.exitDir, (_event, filename) => {
      if (filename && /^[0-9a-f]{64}$/.test(filename)) void this.handleExit(filename);
    });
    this.exitWatcher.on('error', (err) => this.log.error({ err }, 'exit directory watcher failed'));
    await Promise.all(this.list().map((c) => this.recover(c)));
  }

  private async recover(c: Container): Promise<void> {
    await this.locks.run(c.id, async () => {
      const current = this.deps.store.containerById(c.id);
      if (!current) return;
      if (current.state.status === 'removing') {
        // A removal was cut short by a crash: finish it.
        await this.destroy(current);
        return;
      }
      if (!ACTIVE.includes(current.state.status)) return;
      let exit = await this.deps.oci.readExitFile(this.exitDir, c.id);
      let runtime;
      try {
        runtime = exit ? null : await this.deps.oci.state(c.id);
      } catch (err) {
        // Not knowing is not "gone": finalizing would `runc delete --force` a live container. Leave it as
        // stored; its exit file or the next start-up settles it.
        this.log.warn({ err, id: c.id }, 'cannot read the runtime state during recovery; keeping the stored state');
        return;
      }
      if (!exit && (!runtime || runtime.status === 'stopped') && current.state.conmonPid > 0 && (await this.deps.oci.conmonAlive(current.state.conmonPid))) {
        // The process is gone but conmon is still draining its output: the exit file follows shortly.
        exit = await this.deps.oci.waitExitFile(this.exitDir, c.id, 10_000);
      }
      if (exit || !runtime || runtime.status === 'stopped') {
        this.log.info({ id: c.id, exit: exit?.exitCode }, 'container exited while the daemon was away');
        await this.finalizeExit(current, exit?.exitCode, exit?.finishedAt);
        return;
      }
      const status: ContainerStatus = runtime.status === 'paused' ? 'paused' : runtime.status === 'created' ? 'created' : 'running';
      if (status !== current.state.status || runtime.pid !== current.state.pid) {
        this.save(current, { ...current.state, status, pid: runtime.pid || current.state.pid });
      }
    });
    // Restart policies and auto-removal run after start-up, not before the daemon serves its socket.
    const after = this.deps.store.containerById(c.id);
    if (after?.state.status === 'exited') this.track(this.afterExit(after.id));
  }

  private readonly background = new Set<Promise<void>>();

  private track(work: Promise<void>): void {
    const guarded = work.catch((err: unknown) => this.log.warn({ err }, 'post-exit work failed'));
    this.background.add(guarded);
    void guarded.finally(() => this.background.delete(guarded));
  }

  /** Resolves when restarts and removals started by recovery are done (the cleanup command waits for it). */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.all([...this.background]);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.exitWatcher?.close();
  }

  // ------------------------------------------------------------------------------------------ state

  private save(c: Container, state: ContainerState): Container {
    if (state.status !== 'exited' && state.status !== 'removing') this.runtimeDeleted.delete(c.id);
    this.deps.store.setContainerState(c.id, state);
    const updated = { ...c, state };
    this.changes.emit('change', c.id, updated);
    return updated;
  }

  private emit(c: Container, status: string, extra: Record<string, string> = {}): void {
    this.deps.events.emit({
      type: 'container',
      status,
      id: c.id,
      name: c.name,
      image: c.config.imageName,
      attributes: { ...c.config.labels, ...extra },
    });
  }

  // ------------------------------------------------------------------------------------------ create

  async create(spec: SpecGenerator): Promise<{ id: string; warnings: string[] }> {
    if (!spec.image) throw new BadRequestError('no image specified: an image or rootfs is required');
    const image = await this.deps.images.resolve(spec.image);
    const imageConfig = (image.config.config ?? {}) as ImageConfigLike;

    const givenName = spec.name ?? undefined;
    if (givenName !== undefined && !NAME_PATTERN.test(givenName)) {
      throw new BadRequestError(`container name "${givenName}" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument`);
    }
    let name = givenName ?? '';
    const id = newId();
    const containerDir = join(this.deps.config.root, 'containers', id);
    const bundleDir = join(containerDir, 'userdata');
    const runDir = join(this.deps.config.runRoot, 'containers', id);

    // Generate once now so a bad spec is a 400 at create time, not a failure at start.
    const probe = generateOciConfig(spec, imageConfig, {
      id,
      rootfsPath: join(containerDir, 'merged'),
      hostLimits: hostLimits(),
      hostHostname: osHostname(),
    });
    const args = probe.process?.args ?? [];
    if (args.length === 0) {
      throw new BadRequestError('no command or entrypoint provided, and no CMD or ENTRYPOINT from image');
    }

    const stopSignal = spec.stop_signal != null ? parseSignal(String(spec.stop_signal)) : imageConfig.StopSignal ? parseSignal(imageConfig.StopSignal) : 15;
    const restartPolicy = (spec.restart_policy ?? '') as ContainerConfig['restartPolicy'];
    if (!['', 'no', 'on-failure', 'always', 'unless-stopped'].includes(restartPolicy)) {
      throw new BadRequestError(`invalid restart policy "${restartPolicy}": must be no, on-failure, always or unless-stopped`);
    }
    const logDriver = spec.log_configuration?.driver === 'none' ? 'none' : 'k8s-file';
    if (spec.log_configuration?.driver && !['k8s-file', 'json-file', 'none', ''].includes(spec.log_configuration.driver)) {
      throw new BadRequestError(`unsupported log driver "${spec.log_configuration.driver}": podserve supports k8s-file and none`);
    }
    const entrypoint = spec.entrypoint ?? imageConfig.Entrypoint ?? [];
    const config: ContainerConfig = {
      id,
      name,
      created: nowRFC3339Nano(),
      spec,
      rawImageName: spec.raw_image_name || spec.image,
      imageId: image.id,
      imageName: image.names[0] ?? image.id,
      imageDigest: image.digest,
      path: args[0]!,
      args: args.slice(1),
      entrypoint,
      command: spec.command ?? (spec.entrypoint ? [] : (imageConfig.Cmd ?? [])),
      env: probe.process?.env ?? [],
      workDir: probe.process?.cwd ?? '/',
      user: spec.user ?? imageConfig.User ?? '',
      hostname: probe.hostname ?? id.slice(0, 12),
      terminal: spec.terminal ?? false,
      stdin: spec.stdin ?? false,
      labels: { ...(imageConfig.Labels ?? {}), ...(spec.labels ?? {}) },
      annotations: probe.annotations ?? {},
      effectiveCaps: probe.process?.capabilities?.effective ?? [],
      boundingCaps: probe.process?.capabilities?.bounding ?? [],
      rlimits: probe.process?.rlimits ?? [],
      stopSignal,
      stopTimeout: spec.stop_timeout ?? DEFAULT_STOP_TIMEOUT,
      autoRemove: spec.remove ?? false,
      restartPolicy,
      restartRetries: spec.restart_tries ?? 0,
      logDriver,
      logPath: spec.log_configuration?.path || join(bundleDir, 'ctr.log'),
      bundleDir,
      runDir,
      containerDir,
    };

    await mkdir(bundleDir, { recursive: true, mode: 0o700 });
    if (givenName === undefined) {
      // Picked here, synchronously with the insert: concurrent creates can no longer draw the same free name.
      name = this.uniqueName();
      config.name = name;
    }
    try {
      this.deps.store.addContainer({ id, name, config, state: freshState() });
    } catch (err) {
      await rm(containerDir, { recursive: true, force: true });
      throw err;
    }
    const c = this.lookup(id);
    this.emit(c, 'create');
    return { id, warnings: [] };
  }

  private uniqueName(): string {
    for (let i = 0; i < 100; i++) {
      const name = randomName();
      if (!this.deps.store.lookupContainer(name)) return name;
    }
    return `${randomName()}_${newId().slice(0, 6)}`;
  }

  // ------------------------------------------------------------------------------------------ init / start

  async init(nameOrId: string): Promise<Container> {
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      if (current.state.status === 'created') throw new NotModified('container already initialized');
      if (current.state.status === 'running' || current.state.status === 'paused') {
        throw stateImproper(`container ${c.id} has already been created in runtime`);
      }
      return this.initLocked(current);
    });
  }

  /** Mount the rootfs, write config.json, and have conmon run `runc create`. */
  private async initLocked(c: Container): Promise<Container> {
    if (c.state.status === 'removing') throw stateImproper(`container ${c.id} is being removed`);
    const { config } = c;
    await mkdir(config.runDir, { recursive: true, mode: 0o700 });
    await unlink(this.deps.oci.exitFilePath(this.exitDir, c.id)).catch(() => undefined);
    const image = await this.deps.images.resolve(config.imageId);
    const imageConfig = (image.config.config ?? {}) as ImageConfigLike;
    const mountPoint = await this.deps.images.mountRootfs(config.imageId, config.containerDir);
    try {
      const [passwd, group] = await Promise.all([
        readFile(join(mountPoint, 'etc/passwd'), 'utf8').catch(() => undefined),
        readFile(join(mountPoint, 'etc/group'), 'utf8').catch(() => undefined),
      ]);
      const bindMounts = await this.writeEtcFiles(c);
      const oci = generateOciConfig(config.spec, imageConfig, {
        id: c.id,
        rootfsPath: mountPoint,
        hostname: config.hostname,
        hostHostname: osHostname(),
        passwd,
        group,
        hostLimits: hostLimits(),
        bindMounts,
        createdAt: new Date(),
      });
      await writeFile(join(config.bundleDir, 'config.json'), JSON.stringify(oci));
      const created = await this.deps.oci.createContainer({
        id: c.id,
        name: c.name,
        bundleDir: config.bundleDir,
        runDir: config.runDir,
        exitDir: this.exitDir,
        logPath: config.logPath,
        logDriver: config.logDriver,
        terminal: config.terminal,
        stdin: config.stdin,
        exitCommand: this.exitCommand(c.id),
      });
      const updated = this.save(c, {
        ...c.state,
        status: 'created',
        pid: created.pid,
        conmonPid: created.conmonPid,
        exitCode: 0,
        error: '',
        oomKilled: false,
        mountPoint,
        finishedAt: c.state.finishedAt,
      });
      this.emit(updated, 'init');
      return updated;
    } catch (err) {
      await this.deps.images.unmountRootfs(config.containerDir).catch(() => undefined);
      this.save(c, { ...c.state, mountPoint: '', error: err instanceof Error ? err.message : String(err) });
      throw err;
    }
  }

  /**
   * What conmon runs when the container exits: `podserve container cleanup`, which works with no daemon up, behind
   * a /bin/sh gate that stops at once while a daemon serves this run root (src/serving-mark.ts).
   */
  private exitCommand(id: string): string[] {
    const { root, runRoot, runtimePath, conmonPath, uri } = this.deps.config;
    // Through env(1) without NODE_OPTIONS: preload hooks given to the daemon (test harnesses, profilers) must
    // not ride along into a process that conmon starts long after.
    return gatedExitCommand(runRoot, [
      '/usr/bin/env',
      '-u',
      'NODE_OPTIONS',
      process.execPath,
      cliEntry(),
      '--root', root,
      '--runroot', runRoot,
      '--runtime', runtimePath,
      '--conmon', conmonPath,
      'container', 'cleanup', '--url', uri, id,
    ]);
  }

  /** /etc/hosts, /etc/hostname and /etc/resolv.conf for the container, kept in its run dir. */
  private async writeEtcFiles(c: Container): Promise<Record<string, string>> {
    const { runDir, hostname } = c.config;
    const netns = c.config.spec.netns?.nsmode;
    const hostsFile = join(runDir, 'hosts');
    const hostnameFile = join(runDir, 'hostname');
    const resolvFile = join(runDir, 'resolv.conf');
    const name = netns === 'host' ? osHostname() : hostname;
    const extraHosts = (c.config.spec.hostadd ?? []).map((h) => {
      const [host, ip] = h.split(':');
      return `${ip}\t${host}\n`;
    });
    const hostResolv = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
    await Promise.all([
      writeFile(hostsFile, `127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain\n127.0.1.1\t${name} ${c.name}\n${extraHosts.join('')}`),
      writeFile(hostnameFile, `${name}\n`),
      writeFile(resolvFile, hostResolv),
    ]);
    return { '/etc/hosts': hostsFile, '/etc/hostname': hostnameFile, '/etc/resolv.conf': resolvFile };
  }

  async start(nameOrId: string): Promise<Container> {
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, () => this.startLocked(this.lookup(c.id)));
  }

  private async startLocked(c: Container): Promise<Container> {
    if (c.state.status === 'running') throw new NotModified('container already running');
    if (c.state.status === 'paused') throw stateImproper(`cannot start paused container ${c.id}`);
    if (c.state.status === 'removing') throw stateImproper(`container ${c.id} is being removed`);
    let current = c;
    if (current.state.status !== 'created') current = await this.initLocked(current);
    try {
      await this.deps.oci.startContainer(c.id);
    } catch (err) {
      // runc could not start it: clean up so a later start can try again from scratch.
      await this.finalizeExit(current, undefined, undefined, err instanceof Error ? err.message : String(err));
      throw err;
    }
    const updated = this.save(current, { ...current.state, status: 'running', startedAt: nowRFC3339Nano(), stoppedByUser: false });
    this.emit(updated, 'start');
    return updated;
  }

  // ------------------------------------------------------------------------------------------ exit

  /** conmon wrote an exit file (or a stop observed the exit): record it, clean up, apply policies. */
  async handleExit(id: string): Promise<void> {
    if (this.closed) return;
    const finalized = await this.locks.run(id, async () => {
      const c = this.deps.store.containerById(id);
      if (!c || !ACTIVE.includes(c.state.status)) return false;
      const exit = await this.deps.oci.readExitFile(this.exitDir, id);
      if (!exit) return false;
      await this.finalizeExit(c, exit.exitCode, exit.finishedAt);
      return true;
    });
    if (finalized) await this.afterExit(id);
  }

  /** Under the lock: mark exited, release the runtime's and the rootfs' resources, tell waiters. */
  private async finalizeExit(c: Container, exitCode?: number, finishedAt?: Date, error = ''): Promise<Container> {
    await this.execHooks?.exited(c).catch((err: unknown) => this.log.warn({ err, id: c.id }, 'recording exec session exits failed'));
    const code = exitCode ?? (await this.deps.oci.readExitFile(this.exitDir, c.id))?.exitCode ?? -1;
    await this.deps.oci.deleteContainer(c.id).then(
      () => this.runtimeDeleted.add(c.id),
      (err) => this.log.warn({ err, id: c.id }, 'runc delete failed'),
    );
    await unlink(this.deps.oci.exitFilePath(this.exitDir, c.id)).catch(() => undefined);
    await this.deps.images.unmountRootfs(c.config.containerDir).catch((err) => this.log.warn({ err, id: c.id }, 'unmount failed'));
    const oomKilled = await readFile(join(c.config.bundleDir, 'oom'), 'utf8').then(() => true, () => false);
    const updated = this.save(c, {
      ...c.state,
      status: 'exited',
      pid: 0,
      conmonPid: 0,
      exitCode: code,
      finishedAt: finishedAt ? dateRFC3339Nano(finishedAt) : nowRFC3339Nano(),
      oomKilled,
      error,
      mountPoint: '',
    });
    this.emit(updated, 'died', { containerExitCode: String(code) });
    return updated;
  }

  /** After an exit: restart policy, then auto-removal. */
  private async afterExit(id: string): Promise<void> {
    const c = this.deps.store.containerById(id);
    if (!c || c.state.status !== 'exited') return;
    if (this.shouldRestart(c)) {
      try {
        await this.locks.run(id, async () => {
          const current = this.lookup(id);
          if (current.state.status !== 'exited') return;
          const bumped = this.save(current, { ...current.state, restartCount: current.state.restartCount + 1 });
          await this.startLocked(bumped);
          this.emit(bumped, 'restart');
        });
        return;
      } catch (err) {
        this.log.warn({ err, id }, 'restart policy could not restart the container');
      }
    }
    if (c.config.autoRemove) {
      await this.remove(id, { force: true }).catch((err) => {
        if (!(err instanceof PodserveError && err.status === 404)) this.log.warn({ err, id }, 'auto-removal failed');
      });
    }
  }

  private shouldRestart(c: Container): boolean {
    const { restartPolicy, restartRetries } = c.config;
    if (this.closed || c.state.stoppedByUser) return false;
    switch (restartPolicy) {
      case 'always':
      case 'unless-stopped':
        return true;
      case 'on-failure':
        return c.state.exitCode !== 0 && (restartRetries === 0 || c.state.restartCount < restartRetries);
      default:
        return false;
    }
  }

  // ------------------------------------------------------------------------------------------ stop / kill / pause

  async stop(nameOrId: string, timeoutSec?: number): Promise<Container> {
    const c = this.lookup(nameOrId);
    const stopped = await this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      return this.stopLocked(current, timeoutSec ?? current.config.stopTimeout);
    });
    this.emit(stopped, 'stop');
    await this.afterExit(c.id);
    return this.tryLookup(c.id) ?? stopped;
  }

  private async stopLocked(c: Container, timeoutSec: number): Promise<Container> {
    const { status } = c.state;
    if (status === 'configured' || status === 'exited' || status === 'stopped') throw new NotModified('container already stopped');
    if (status === 'created') {
      // Never started: there is nothing to signal, just release the runtime's resources.
      const marked = this.save(c, { ...c.state, stoppedByUser: true });
      return this.finalizeExit(marked, 0);
    }
    const marked = this.save(c, { ...c.state, stoppedByUser: true });
    if (status === 'paused') await this.deps.oci.unpauseContainer(c.id);
    // An exec start in progress completes first (Podman orders them by the container lock); then the sessions are
    // signalled alongside the container, with the same timeout (Podman's ExecStopContainer).
    await this.execHooks?.startsSettled(c);
    const execsStopped = this.execHooks?.stopping(c, timeoutSec).catch((err: unknown) => this.log.warn({ err, id: c.id }, 'stopping exec sessions failed'));
    await this.deps.oci.stopContainer(c.id, timeoutSec, c.config.stopSignal, { exitDir: this.exitDir, all: true });
    await execsStopped;
    const exit = await this.deps.oci.waitExitFile(this.exitDir, c.id, 5000);
    return this.finalizeExit(marked, exit?.exitCode, exit?.finishedAt);
  }

  async kill(nameOrId: string, signal: string | number = 'SIGKILL'): Promise<Container> {
    const signum = typeof signal === 'number' ? signal : parseSignal(signal);
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      if (current.state.status !== 'running' && current.state.status !== 'paused') {
        throw stateImproper(`can only kill running containers. ${c.id} is in state ${current.state.status}`);
      }
      await this.deps.oci.killContainer(c.id, signum);
      this.emit(current, 'kill', { signal: String(signum) });
      return current;
    });
  }

  async pause(nameOrId: string): Promise<Container> {
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      if (current.state.status === 'paused') throw stateImproper(`${c.id} is already paused`);
      if (current.state.status !== 'running') throw stateImproper(`"${c.id}" is not running, can't pause`);
      await this.deps.oci.pauseContainer(c.id);
      const updated = this.save(current, { ...current.state, status: 'paused' });
      this.emit(updated, 'pause');
      return updated;
    });
  }

  async unpause(nameOrId: string): Promise<Container> {
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      if (current.state.status !== 'paused') throw stateImproper(`"${c.id}" is not paused, can't unpause`);
      await this.deps.oci.unpauseContainer(c.id);
      const updated = this.save(current, { ...current.state, status: 'running' });
      this.emit(updated, 'unpause');
      return updated;
    });
  }

  async restart(nameOrId: string, timeoutSec?: number): Promise<Container> {
    const c = this.lookup(nameOrId);
    const restarted = await this.locks.run(c.id, async () => {
      let current = this.lookup(c.id);
      if (current.state.status === 'running' || current.state.status === 'paused') {
        current = await this.stopLocked(current, timeoutSec ?? current.config.stopTimeout);
      }
      return this.startLocked(current);
    });
    this.emit(restarted, 'restart');
    return restarted;
  }

  // ------------------------------------------------------------------------------------------ remove

  /** Removes a container; running ones only with force (stopped first). Returns the removed id. */
  async remove(nameOrId: string, opts: { force?: boolean; timeoutSec?: number } = {}): Promise<string> {
    const c = this.lookup(nameOrId);
    await this.locks.run(c.id, async () => {
      let current = this.deps.store.containerById(c.id);
      if (!current) throw noSuchContainer(nameOrId);
      const { status } = current.state;
      if ((status === 'running' || status === 'paused') && !opts.force) {
        throw stateImproper(
          `cannot remove container ${c.id} as it is ${status} - running or paused containers cannot be removed without force`,
        );
      }
      if (status === 'running' || status === 'paused') {
        current = await this.stopLocked(current, opts.timeoutSec ?? current.config.stopTimeout);
      } else if (status === 'created') {
        current = await this.finalizeExit(current, 0);
      }
      current = this.save(current, { ...current.state, status: 'removing' });
      await this.destroy(current);
    });
    return c.id;
  }

  /** Under the lock: release everything of a container and forget it. */
  private async destroy(c: Container): Promise<void> {
    // One runtime process less per removal when the exit already deleted the runtime's state (only known for
    // exits this daemon handled; after a restart the runtime is asked again).
    if (!this.runtimeDeleted.delete(c.id)) await this.deps.oci.deleteContainer(c.id).catch(() => undefined);
    await this.deps.images.unmountRootfs(c.config.containerDir).catch(() => undefined);
    await Promise.all([
      rm(c.config.containerDir, { recursive: true, force: true }),
      rm(c.config.runDir, { recursive: true, force: true }),
      unlink(this.deps.oci.exitFilePath(this.exitDir, c.id)).catch(() => undefined),
    ]);
    this.deps.store.removeContainer(c.id);
    this.removedExitCodes.set(c.id, c.state.exitCode);
    if (this.removedExitCodes.size > REMEMBERED_EXITS) {
      this.removedExitCodes.delete(this.removedExitCodes.keys().next().value!);
    }
    this.changes.emit('change', c.id, undefined);
    this.emit(c, 'remove');
  }

  // ------------------------------------------------------------------------------------------ rename / update

  async rename(nameOrId: string, newName: string): Promise<Container> {
    if (!NAME_PATTERN.test(newName)) throw new BadRequestError(`container name "${newName}" must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      const other = this.deps.store.lookupContainer(newName);
      if (other && other.id !== c.id) {
        throw new ConflictError('name or ID already in use', `the container name "${newName}" is already in use`);
      }
      const config = { ...current.config, name: newName };
      this.deps.store.setContainerConfig(c.id, newName, config);
      const updated = { ...current, name: newName, config };
      this.emit(updated, 'rename');
      return updated;
    });
  }

  async updateResources(nameOrId: string, resources: Record<string, unknown>): Promise<Container> {
    const c = this.lookup(nameOrId);
    return this.locks.run(c.id, async () => {
      const current = this.lookup(c.id);
      if (current.state.status === 'running' || current.state.status === 'paused' || current.state.status === 'created') {
        await this.deps.oci.updateResources(c.id, resources);
      }
      const spec = { ...current.config.spec, resource_limits: { ...(current.config.spec.resource_limits ?? {}), ...resources } };
      const config = { ...current.config, spec };
      this.deps.store.setContainerConfig(c.id, current.name, config);
      // No event: Podman 4.3.1 has no "update" event status, and podman-remote fails on unknown ones.
      return { ...current, config };
    });
  }

  // ------------------------------------------------------------------------------------------ wait

  /**
   * Resolves when `done(container)` holds (checked now and after every change), with the container as it was
   * then, or undefined when it was removed. Event driven: no polling.
   */
  waitFor(id: string, done: (c: Container | undefined) => boolean, signal?: AbortSignal): Promise<Container | undefined> {
    return new Promise((resolve, reject) => {
      const now = this.deps.store.containerById(id);
      if (done(now)) return resolve(now);
      const onChange = (changedId: string, c: Container | undefined): void => {
        if (changedId !== id || !done(c)) return;
        cleanup();
        resolve(c);
      };
      const onAbort = (): void => {
        cleanup();
        reject(new PodserveError(499, 'client went away'));
      };
      const cleanup = (): void => {
        this.changes.off('change', onChange);
        signal?.removeEventListener('abort', onAbort);
      };
      this.changes.on('change', onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Subscribes to changes of one container; returns the unsubscribe function. */
  onChange(id: string, listener: (c: Container | undefined) => void): () => void {
    const wrapped = (changedId: string, c: Container | undefined): void => {
      if (changedId === id) listener(c);
    };
    this.changes.on('change', wrapped);
    return () => this.changes.off('change', wrapped);
  }

  /** Exit code of a container that was removed (recently), if known. */
  removedExitCode(id: string): number | undefined {
    return this.removedExitCodes.get(id);
  }

  // ------------------------------------------------------------------------------------------ checkpoint / restore

  /** What checkpoint/restore (src/engine/checkpoint.ts) needs: this manager's lock and run/exit internals. */
  checkpointAccess(): CheckpointAccess {
    return {
      exitDir: this.exitDir,
      locked: (id, work) => this.locks.run(id, work),
      save: (c, state) => this.save(c, state),
      emit: (c, status, extra) => this.emit(c, status, extra),
      execsExited: async (c) => {
        await this.execHooks?.exited(c);
      },
      writeEtcFiles: (c) => this.writeEtcFiles(c),
      exitCommand: (id) => this.exitCommand(id),
      add: (c) => {
        this.deps.store.addContainer(c);
        this.changes.emit('change', c.id, c);
      },
      forget: (id) => {
        this.deps.store.removeContainer(id);
        this.changes.emit('change', id, undefined);
      },
    };
  }

  // ------------------------------------------------------------------------------------------ misc

  isRunning(c: Container): boolean {
    return c.state.status === 'running' || c.state.status === 'paused';
  }

  killSignal(signal: string): number {
    return parseSignal(signal);
  }

  static readonly SIGKILL = SIGKILL;
}
