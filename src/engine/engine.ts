/**
 * The engine: owns containers, exec sessions, images (through the image store) and events, and is the only
 * thing routes talk to. Nothing here knows about HTTP.
 */
import { mkdir, statfs } from 'node:fs/promises';
import { basename } from 'node:path';
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

export class Engine {
  readonly startedAt = new Date();

  private constructor(
    readonly config: DaemonConfig,
    readonly logger: Logger,
  ) {}

  static async open(config: DaemonConfig, logger: Logger): Promise<Engine> {
    await Promise.all([mkdir(config.root, { recursive: true, mode: 0o700 }), mkdir(config.runRoot, { recursive: true, mode: 0o700 })]);
    return new Engine(config, logger);
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

  /** Counts for /info; containers and images join as their stores arrive. */
  counts(): { containers: { number: number; paused: number; running: number; stopped: number }; images: number } {
    return { containers: { number: 0, paused: 0, running: 0, stopped: 0 }, images: 0 };
  }

  /** Podman's libpod /info (define.Info): real host facts, runtime and store. */
  async info(): Promise<Record<string, unknown>> {
    const host = hostBasics();
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
    /* stores close here as they arrive */
  }
}
