/** System endpoints of both trees: _ping, version, info. */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { BUILDAH_VERSION } from '../src/version.js';

/** Headers Podman's /_ping adds to the common ones (compat/ping.go). */
function pingHeaders(reply: FastifyReply): FastifyReply {
  return reply.headers({
    'Builder-Version': '',
    'Buildkit-Version': '',
    'Cache-Control': 'no-cache',
    'Docker-Experimental': 'true',
    'Libpod-Buildah-Version': BUILDAH_VERSION,
    Pragma: 'no-cache',
  });
}

export default async function systemRoutes(app: FastifyInstance): Promise<void> {
  for (const path of ['/_ping', '/libpod/_ping']) {
    app.get(path, async (_request, reply) => pingHeaders(reply).type('text/plain; charset=utf-8').send('OK'));
    app.head(path, async (_request, reply) => {
      pingHeaders(reply).send();
    });
  }

  for (const path of ['/version', '/libpod/version']) {
    app.get(path, async () => app.engine.version());
  }

  app.get('/libpod/info', async () => app.engine.info());

  app.get('/info', async () => dockerInfo(await app.engine.info(), app.engine.config.root));
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Docker's /info shape, from the same facts (Podman's compat/info.go mapping). */
function dockerInfo(info: Json, root: string): Json {
  const host = info.host as Json;
  const store = info.store as Json;
  const ctrs = store.containerStore as Json;
  return {
    ID: host.hostname,
    Containers: ctrs.number,
    ContainersRunning: ctrs.running,
    ContainersPaused: ctrs.paused,
    ContainersStopped: ctrs.stopped,
    Images: store.imageStore.number,
    Driver: store.graphDriverName,
    DriverStatus: Object.entries(store.graphStatus as Record<string, string>),
    Plugins: { Volume: ['local'], Network: [], Authorization: null, Log: info.plugins.log },
    MemoryLimit: true,
    SwapLimit: true,
    KernelMemory: false,
    KernelMemoryTCP: false,
    CpuCfsPeriod: true,
    CpuCfsQuota: true,
    CPUShares: true,
    CPUSet: true,
    PidsLimit: true,
    IPv4Forwarding: false,
    // Podman reports these as "not disabled"; false would make the docker CLI print warnings Podman does not cause.
    BridgeNfIptables: true,
    BridgeNfIp6tables: true,
    Debug: false,
    NFd: 0,
    OomKillDisable: true,
    NGoroutines: 0,
    SystemTime: new Date().toISOString(),
    LoggingDriver: '',
    CgroupDriver: host.cgroupManager,
    NEventsListener: 0,
    KernelVersion: host.kernel,
    OperatingSystem: host.distribution.distribution,
    OSVersion: host.distribution.version,
    OSType: 'linux',
    Architecture: host.arch,
    IndexServerAddress: '',
    RegistryConfig: {
      AllowNondistributableArtifactsCIDRs: [],
      AllowNondistributableArtifactsHostnames: [],
      InsecureRegistryCIDRs: [],
      IndexConfigs: {},
      Mirrors: [],
    },
    NCPU: host.cpus,
    MemTotal: host.memTotal,
    GenericResources: null,
    DockerRootDir: root,
    HttpProxy: process.env.HTTP_PROXY ?? '',
    HttpsProxy: process.env.HTTPS_PROXY ?? '',
    NoProxy: process.env.NO_PROXY ?? '',
    Name: host.hostname,
    Labels: null,
    ExperimentalBuild: true,
    ServerVersion: info.version.Version,
    Runtimes: { [host.ociRuntime.name]: { path: host.ociRuntime.path } },
    DefaultRuntime: host.ociRuntime.name,
    Swarm: { NodeID: '', NodeAddr: '', LocalNodeState: 'inactive', ControlAvailable: false, Error: '', RemoteManagers: null },
    LiveRestoreEnabled: false,
    Isolation: '',
    InitBinary: '',
    ContainerdCommit: { ID: '', Expected: '' },
    RuncCommit: { ID: '', Expected: '' },
    InitCommit: { ID: '', Expected: '' },
    SecurityOptions: [],
    ProductLicense: 'Apache-2.0',
    Warnings: [],
    BuildahVersion: host.buildahVersion,
    CPURealtimePeriod: true,
    CPURealtimeRuntime: true,
    CgroupVersion: String(host.cgroupVersion).replace('v', ''),
    Rootless: host.security.rootless,
    SwapFree: host.swapFree,
    SwapTotal: host.swapTotal,
    Uptime: host.uptime,
  };
}
