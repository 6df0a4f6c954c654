/**
 * The engine: owns containers, exec sessions, images (through the image store) and events, and is the only
 * thing routes talk to. Nothing here knows about HTTP.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import type { DaemonConfig } from '../config.js';
import { BUILDAH_VERSION, LIBPOD_API_VERSION, LIBPOD_MIN_API_VERSION, COMPAT_API_VERSION, COMPAT_MIN_API_VERSION, PODSERVE_VERSION } from '../version.js';
import {
  DEFAULT_CAPABILITIES,
  binaryVersion,
  cgroupFacts,
  cpuUtilization,
  distribution,
  filesystemName,
  hostBasics,
  memoryFacts,
  packageOf,
} from './host.js';
import { InternalError, noSuchContainer, noSuchImage } from '../errors.js';
import { ConmonRuntime } from '../oci/conmon.js';
import type { OCIRuntime } from '../oci/types.js';
import { ImageStore } from '../image/store.js';
import { ContainerManager, type Store } from './containers.js';
import { CheckpointService } from './checkpoint.js';
import { EventBus } from './events.js';
import { containerFilter, type Filters } from './filters.js';
import { StateStore } from './store.js';
import type { Container } from './types.js';
import { directorySize } from './disk.js';
import { ImageService, type PullOptions } from './images.js';
import { readLogBatches, type LogRecord, type ReadLogsOptions } from './logs.js';
import { dockerStatsStream, libpodStatsStream, statsTargets, StatsTargetError, type DockerStats, type DockerStatsOptions, type LibpodStatsOptions, type LibpodStatsReport } from './stats.js';
import { containerTop } from './top.js';

export interface VersionComponent {
  Name: string;
  Version: string;
  Details: Record<string, string>;
}

export interface VersionReport {
  Platform: { Name: string };
  Components: VersionComponent[];
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime: string;
}

export interface EngineParts {
  store: Store;
  oci: OCIRuntime;
  images: ImageStore;
  events: EventBus;
}


export class Engine {
  readonly startedAt = new Date();
  readonly containers: ContainerManager;
  readonly store: Store;
  readonly oci: OCIRuntime;
  readonly imageStore: ImageStore;
  readonly images: ImageService;
  readonly events: EventBus;
  /** Checkpoint/restore with CRIU (src/engine/checkpoint.ts). */
  readonly checkpoints: CheckpointService;

  private constructor(
    readonly config: DaemonConfig,
    readonly logger: Logger,
    parts: EngineParts,
  ) {
    this.store = parts.store;
    this.oci = parts.oci;
    this.imageStore = parts.images;
    this.events = parts.events;
    this.containers = new ContainerManager({ config, logger, ...parts });
    this.checkpoints = new CheckpointService({
      config,
      logger: logger.child({ part: 'checkpoint' }),
      oci: parts.oci,
      images: parts.images,
      access: this.containers.checkpointAccess(),
      lookup: (nameOrId) => this.containers.lookup(nameOrId),
      tryLookup: (nameOrId) => this.containers.tryLookup(nameOrId),
      remove: (id) => this.containers.remove(id, { force: true }),
    });
    this.images = new ImageService(
      parts.images,
      parts.events,
      (imageId) => this.containers.list().filter((c) => c.config.imageId === imageId).length,
      logger.child({ part: 'registry' }),
    );
  }

  /** Opens the stores, reconciles containers with the runtime (recovery) and starts watching exits. */
  static async open(config: DaemonConfig, logger: Logger): Promise<Engine> {
    await Promise.all([mkdir(config.root, { recursive: true, mode: 0o700 }), mkdir(config.runRoot, { recursive: true, mode: 0o700 })]);
    const store: Store = new StateStore(config.root);
    const oci = new ConmonRuntime({
      runtimePath: config.runtimePath,
      runtimeName: basename(config.runtimePath),
      conmonPath: config.conmonPath,
      runRoot: config.runRoot,
      criuPath: config.criuPath,
      logger: logger.child({ part: 'oci' }),
    });
    const [images, events] = await Promise.all([
      ImageStore.open(join(config.root, 'images'), logger.child({ part: 'images' })),
      EventBus.open(join(config.runRoot, 'events', 'events.log'), logger.child({ part: 'events' })),
    ]);
    const engine = new Engine(config, logger, { store, oci, images, events });
    await engine.containers.open();
    return engine;
  }

  // ------------------------------------------------------------------------------------------ containers

  /** Containers matching Podman's list filters; only running ones unless `all`. Oldest first. */
  listContainers(filters: Filters, all: boolean): Container[] {
    const matches = containerFilter(
      filters,
      (nameOrId) => this.containers.lookup(nameOrId),
      (c, ancestor) => {
        try {
          return this.images.resolve(ancestor).id === c.config.imageId;
        } catch {
          return c.config.imageName === ancestor || c.config.rawImageName === ancestor;
        }
      },
    );
    const explicitStatus = (filters.status ?? []).length > 0;
    return this.containers.list().filter((c) => (all || explicitStatus || c.state.status === 'running' || c.state.status === 'paused') && matches(c));
  }

  /** Size of the container's writable layer and of its whole rootfs (computed only when asked). */
  async containerSize(c: Container): Promise<{ rw: number; rootFs: number }> {
    const rw = await directorySize(join(c.config.containerDir, 'upper'));
    const image = this.images.resolve(c.config.imageId);
    return { rw, rootFs: rw + this.imageStore.size(image.id) };
  }

  /** Borrowers of the rootfs of stopped containers, mounted by withContainerRootfs (container id -> count). */
  private readonly rootfsBorrowers = new Map<string, number>();

  /**
   * Runs `use` with the container's root filesystem mounted (docker cp of a stopped container, export). A
   * container that runs keeps its own mount; a stopped one is mounted for the call and unmounted after the last
   * borrower, unless it was started meanwhile (its mount is then its own).
   */
  async withContainerRootfs<T>(nameOrId: string, use: (rootfs: string, c: Container) => Promise<T>): Promise<T> {
    const c = this.containers.lookup(nameOrId);
    if (c.state.mountPoint) return use(c.state.mountPoint, c);
    const rootfs = await this.imageStore.mountRootfs(c.config.imageId, c.config.containerDir);
    this.rootfsBorrowers.set(c.id, (this.rootfsBorrowers.get(c.id) ?? 0) + 1);
    try {
      return await use(rootfs, c);
    } finally {
      const left = (this.rootfsBorrowers.get(c.id) ?? 1) - 1;
      if (left > 0) this.rootfsBorrowers.set(c.id, left);
      else {
        this.rootfsBorrowers.delete(c.id);
        const now = this.containers.tryLookup(c.id);
        if (now && !now.state.mountPoint) {
          await this.imageStore.unmountRootfs(c.config.containerDir).catch((err) => this.logger.warn({ err, id: c.id }, 'unmounting a borrowed rootfs failed'));
        }
      }
    }
  }

  execIdsOf(containerId: string): string[] {
    return this.store.execsOf(containerId).map((e) => e.id);
  }

  /**
   * libpod wait: resolves with the exit code once the container is in one of `conditions` (exit states), or
   * -1 when a non-exit condition was met (as Podman answers).
   */
  async waitForConditions(nameOrId: string, conditions: string[], signal: AbortSignal): Promise<number> {
    const c = this.containers.lookup(nameOrId);
    const wantsExit = conditions.includes('stopped') || conditions.includes('exited');
    const others = conditions.filter((s) => s !== 'stopped' && s !== 'exited');
    const reached = await this.containers.waitFor(
      c.id,
      (now) => {
        if (!now) return true;
        const status = now.state.status;
        if (wantsExit && status === 'exited') return true;
        return others.includes(status) || (others.includes('created') && status === 'configured');
      },
      signal,
    );
    if (!reached) {
      const code = this.containers.removedExitCode(c.id);
      if (code !== undefined) return code;
      throw noSuchContainer(nameOrId);
    }
    return reached.state.status === 'exited' ? reached.state.exitCode : -1;
  }

  /**
   * Makes an image available as `policy` asks: `missing`/`newer` use a local copy when there is one, `never`
   * insists on one, `always` pulls from the registry. Reports progress lines; resolves with the image id (the
   * last one when `options.allTags` pulls several; see pullImages).
   */
  async pullImage(reference: string, policy: string, progress: (line: string) => void, options: PullOptions = {}): Promise<string> {
    const ids = await this.pullImages(reference, policy, { ...options, progress });
    return ids[ids.length - 1]!;
  }

  /** pullImage, resolving with every image ID pulled. */
  async pullImages(reference: string, policy: string, options: PullOptions = {}): Promise<string[]> {
    const local = !options.allTags && this.images.exists(reference) ? this.images.resolve(reference) : undefined;
    if (local && policy !== 'always') return [local.id];
    if (policy === 'never') throw noSuchImage(reference);
    const ids = await this.images.pull(reference, options);
    if (ids.length === 0) throw new InternalError(`internal error: no image pulled (pull policy ${policy})`);
    return ids;
  }

  /** Force-removes every container created from an image (podman rmi --force). */
  async removeContainersOfImage(imageId: string): Promise<void> {
    for (const c of this.containers.list().filter((c) => c.config.imageId === imageId)) {
      await this.containers.remove(c.id, { force: true, timeoutSec: 0 });
    }
  }

  /** Removes every stopped container (matching filters); reports each with its freed size. */
  async pruneContainers(filters: Filters): Promise<{ id: string; size: number; error?: string }[]> {
    const victims = this.listContainers(filters, true).filter((c) => c.state.status === 'exited' || c.state.status === 'configured' || c.state.status === 'stopped');
    const results: { id: string; size: number; error?: string }[] = [];
    for (const c of victims) {
      const size = await directorySize(join(c.config.containerDir, 'upper'));
      try {
        await this.containers.remove(c.id);
        results.push({ id: c.id, size });
      } catch (err) {
        results.push({ id: c.id, size: 0, error: err instanceof Error ? err.message : String(err) });
      }
    }
    return results;
  }

  // ------------------------------------------------------------------------------------------ logs, stats, top

  /**
   * A container's k8s-file log as batches of records (see readLogBatches); with `follow`, reading goes on while
   * the container runs and ends after a final read once it stopped.
   */
  containerLogs(c: Container, opts: Omit<ReadLogsOptions, 'isRunning' | 'waitExit' | 'logger'>): AsyncGenerator<LogRecord[], void, undefined> {
    if (c.config.logDriver === 'none') {
      throw new InternalError(
        `failed to obtain logs for Container '${c.name}': this container is using the 'none' log driver, cannot read logs: this container is not logging output`,
      );
    }
    const running = (now: Container | undefined): boolean => now !== undefined && this.containers.isRunning(now);
    return readLogBatches(c.config.logPath, {
      ...opts,
      isRunning: () => running(this.containers.tryLookup(c.id)),
      waitExit: async (signal) => {
        await this.containers.waitFor(c.id, (now) => !running(now), signal);
      },
      logger: this.logger,
    });
  }

  /** Docker stats objects of a container: none when it does not run; streamed until it stops or `signal` aborts. */
  dockerStats(c: Container, opts: DockerStatsOptions): AsyncGenerator<DockerStats, void, undefined> {
    return dockerStatsStream(this.containers, c.id, opts);
  }

  /**
   * libpod's stats reports for the named containers (all when none).
   * @throws NotFoundError at once when a named container does not exist
   */
  libpodStats(names: readonly string[], opts: LibpodStatsOptions): AsyncGenerator<LibpodStatsReport, void, undefined> {
    try {
      statsTargets(this.containers, names);
    } catch (err) {
      if (err instanceof StatsTargetError) throw noSuchContainer(err.nameOrId);
      throw err;
    }
    return libpodStatsStream(this.containers, names, opts);
  }

  /** Podman's top: tab-separated lines, titles first (psgo descriptors, or ps(1) run in the container). */
  top(c: Container, psArgs: string): Promise<string[]> {
    return containerTop({ oci: this.oci, logger: this.logger }, c, psArgs);
  }

  get runtimeName(): string {
    return basename(this.config.runtimePath);
  }

  /** What /version reports: Podman 4.3.1's shape, with podserve itself and the real conmon/runc versions. */
  async version(): Promise<VersionReport> {
    const host = hostBasics();
    const dist = await distribution();
    const [conmonVersion, runtimeVersion, conmonPackage, runtimePackage] = await Promise.all([
      binaryVersion(this.config.conmonPath),
      binaryVersion(this.config.runtimePath),
      packageOf(this.config.conmonPath),
      packageOf(this.config.runtimePath),
    ]);
    const buildTime = '1970-01-01T00:00:00Z';
    return {
      Platform: { Name: `linux/${host.arch}/${dist.distribution}-${dist.version}` },
      Components: [
        {
          Name: 'Podman Engine',
          Version: LIBPOD_API_VERSION,
          Details: {
            APIVersion: LIBPOD_API_VERSION,
            Arch: host.arch,
            BuildTime: buildTime,
            Experimental: 'false',
            GitCommit: '',
            GoVersion: process.version,
            KernelVersion: host.kernel,
            MinAPIVersion: LIBPOD_MIN_API_VERSION,
            Os: 'linux',
          },
        },
        { Name: 'podserve', Version: PODSERVE_VERSION, Details: { NodeVersion: process.version } },
        { Name: 'Conmon', Version: conmonVersion.split('\n').join(', '), Details: { Package: conmonPackage } },
        { Name: `OCI Runtime (${this.runtimeName})`, Version: runtimeVersion, Details: { Package: runtimePackage } },
      ],
      Version: LIBPOD_API_VERSION,
      ApiVersion: COMPAT_API_VERSION,
      MinAPIVersion: COMPAT_MIN_API_VERSION,
      GitCommit: '',
      GoVersion: process.version,
      Os: 'linux',
      Arch: host.arch,
      KernelVersion: host.kernel,
      BuildTime: buildTime,
    };
  }

  /** Counts for /info. */
  counts(): { containers: { number: number; paused: number; running: number; stopped: number }; images: number } {
    const all = this.containers.list();
    const running = all.filter((c) => c.state.status === 'running').length;
    const paused = all.filter((c) => c.state.status === 'paused').length;
    return {
      containers: { number: all.length, paused, running, stopped: all.length - running - paused },
      images: this.images.count(),
    };
  }

  /** Podman's libpod /info (define.Info): real host facts, runtime and store. */
  async info(): Promise<Record<string, unknown>> {
    const host = hostBasics();
    const criuProbe = this.checkpoints.criuInfo();
    const [cg, dist, mem, cpu, fs, conmonVersion, runtimeVersion, conmonPackage, runtimePackage] = await Promise.all([
      cgroupFacts(),
      distribution(),
      memoryFacts(),
      cpuUtilization(),
      statfs(this.config.root),
      binaryVersion(this.config.conmonPath),
      binaryVersion(this.config.runtimePath),
      packageOf(this.config.conmonPath),
      packageOf(this.config.runtimePath),
    ]);
    const counts = this.counts();
    return {
      host: {
        arch: host.arch,
        buildahVersion: BUILDAH_VERSION,
        cgroupManager: cg.manager,
        cgroupVersion: cg.version,
        cgroupControllers: cg.controllers,
        conmon: { package: conmonPackage, path: this.config.conmonPath, version: conmonVersion.split('\n').join(', ') },
        cpus: host.cpus,
        cpuUtilization: cpu,
        // Not in Podman 4.3.1's /info: which CRIU checkpoint/restore uses, and whether it works on this host.
        criu: await criuProbe.then(({ path, version, available, error }) => ({ path, version, available, ...(error ? { error } : {}) })),
        distribution: dist,
        eventLogger: 'file',
        hostname: host.hostname,
        idMappings: { gidmap: null, uidmap: null },
        kernel: host.kernel,
        logDriver: 'k8s-file',
        memFree: mem.memFree,
        memTotal: mem.memTotal,
        networkBackend: 'none',
        ociRuntime: { name: this.runtimeName, package: runtimePackage, path: this.config.runtimePath, version: runtimeVersion },
        os: 'linux',
        remoteSocket: { path: this.config.uri, exists: true },
        serviceIsRemote: false,
        security: {
          apparmorEnabled: false,
          capabilities: DEFAULT_CAPABILITIES.join(','),
          rootless: process.getuid?.() !== 0,
          seccompEnabled: false,
          seccompProfilePath: '',
          selinuxEnabled: false,
        },
        swapFree: mem.swapFree,
        swapTotal: mem.swapTotal,
        uptime: host.uptime,
        linkmode: 'dynamic',
      },
      store: {
        configFile: '',
        containerStore: counts.containers,
        graphDriverName: 'overlay',
        graphOptions: {},
        graphRoot: this.config.root,
        graphRootAllocated: fs.blocks * fs.bsize,
        graphRootUsed: (fs.blocks - fs.bfree) * fs.bsize,
        graphStatus: { 'Backing Filesystem': filesystemName(fs.type), 'Native Overlay Diff': 'true', 'Supports d_type': 'true', 'Using metacopy': 'false' },
        imageCopyTmpDir: '/var/tmp',
        imageStore: { number: counts.images },
        runRoot: this.config.runRoot,
        volumePath: `${this.config.root}/volumes`,
      },
      registries: {},
      plugins: { volume: ['local'], network: [], log: ['k8s-file', 'none'], authorization: null },
      version: {
        APIVersion: LIBPOD_API_VERSION,
        Version: LIBPOD_API_VERSION,
        GoVersion: process.version,
        GitCommit: '',
        BuiltTime: 'Thu Jan  1 00:00:00 1970',
        Built: 0,
        OsArch: `linux/${host.arch}`,
        Os: 'linux',
      },
    };
  }

  async close(): Promise<void> {
    await this.containers.close();
    await this.events.close();
    this.store.close();
  }
}
