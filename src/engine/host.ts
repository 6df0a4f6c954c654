/**
 * Facts about the host for /info and /version: read from /proc, /sys and /etc when asked (nothing here
 * runs at start-up), with the slow parts (package lookups) cached.
 */
import { execFile } from 'node:child_process';
import { readFile, statfs } from 'node:fs/promises';
import os from 'node:os';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** Podman's default capability set (containers.conf default_capabilities), reported by /info. */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP',
  'CAP_SETGID',
  'CAP_SETPCAP',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

const CGROUP2_SUPER_MAGIC = 0x63677270;

export interface CgroupFacts {
  version: 'v1' | 'v2';
  manager: 'cgroupfs';
  controllers: string[];
}

let cgroupCache: Promise<CgroupFacts> | undefined;

/** cgroup v2 when /sys/fs/cgroup is a cgroup2 mount; v1 (or hybrid, treated as v1) otherwise. */
export function cgroupFacts(): Promise<CgroupFacts> {
  cgroupCache ??= (async () => {
    const fs = await statfs('/sys/fs/cgroup').catch(() => undefined);
    if (fs && fs.type === CGROUP2_SUPER_MAGIC) {
      const list = await readFile('/sys/fs/cgroup/cgroup.controllers', 'utf8').catch(() => '');
      return { version: 'v2', manager: 'cgroupfs', controllers: list.trim().split(/\s+/).filter(Boolean) };
    }
    // /proc/cgroups: subsys_name hierarchy num_cgroups enabled; v1 controllers have a hierarchy id > 0.
    const table = await readFile('/proc/cgroups', 'utf8').catch(() => '');
    const controllers = table
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(/\s+/))
      .filter((f) => f[1] !== '0' && f[3] === '1')
      .map((f) => f[0]!);
    return { version: 'v1', manager: 'cgroupfs', controllers };
  })();
  return cgroupCache;
}

export interface Distribution {
  distribution: string;
  version: string;
  codename?: string;
}

let distributionCache: Promise<Distribution> | undefined;

export function distribution(): Promise<Distribution> {
  distributionCache ??= readFile('/etc/os-release', 'utf8')
    .catch(() => '')
    .then((text) => {
      const fields = new Map<string, string>();
      for (const line of text.split('\n')) {
        const m = /^([A-Z_]+)=(.*)$/.exec(line);
        if (m) fields.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
      }
      return {
        distribution: fields.get('ID') ?? 'unknown',
        version: fields.get('VERSION_ID') ?? 'unknown',
        codename: fields.get('VERSION_CODENAME'),
      };
    });
  return distributionCache;
}

export interface MemoryFacts {
  memTotal: number;
  memFree: number;
  swapTotal: number;
  swapFree: number;
}

export async function memoryFacts(): Promise<MemoryFacts> {
  const text = await readFile('/proc/meminfo', 'utf8');
  const kb = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : 0;
  };
  return { memTotal: kb('MemTotal'), memFree: kb('MemAvailable'), swapTotal: kb('SwapTotal'), swapFree: kb('SwapFree') };
}

/** CPU time split since boot, in percent, as podman's cpuUtilization. */
export async function cpuUtilization(): Promise<{ userPercent: number; systemPercent: number; idlePercent: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = user + nice + system + idle + iowait + irq + softirq + steal || 1;
  const pct = (n: number): number => Math.round((n / total) * 10000) / 100;
  return { userPercent: pct(user + nice), systemPercent: pct(system + irq + softirq), idlePercent: pct(idle + iowait) };
}

/** "0h 5m 36.00s", podman's uptime format. */
export function formatUptime(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds - h * 3600 - m * 60;
  return `${h}h ${m}m ${s.toFixed(2)}s`;
}

export function hostBasics(): { arch: string; os: string; kernel: string; hostname: string; cpus: number; uptime: string } {
  return {
    arch: os.arch() === 'x64' ? 'amd64' : os.arch(),
    os: 'linux',
    kernel: os.release(),
    hostname: os.hostname(),
    cpus: os.cpus().length,
    uptime: formatUptime(Math.floor(os.uptime())),
  };
}

const packageCache = new Map<string, Promise<string>>();

/** The Debian package owning `path`, as podman reports it ("runc_1.1.5+ds1-1+deb12u1_amd64"); "" if unknown. */
export function packageOf(path: string): Promise<string> {
  let cached = packageCache.get(path);
  if (!cached) {
    cached = (async () => {
      try {
        const owner = (await execFileAsync('dpkg-query', ['-S', path], { timeout: 5000 })).stdout.split(':')[0]!.trim();
        const { stdout } = await execFileAsync(
          'dpkg-query',
          ['-W', '-f=${Package}_${Version}_${Architecture}', owner],
          { timeout: 5000 },
        );
        return stdout.trim();
      } catch {
        return '';
      }
    })();
    packageCache.set(path, cached);
  }
  return cached;
}

const versionCache = new Map<string, Promise<string>>();

/** `<binary> --version` output, trimmed and cached (the binaries do not change under a running daemon). */
export function binaryVersion(path: string): Promise<string> {
  let cached = versionCache.get(path);
  if (!cached) {
    cached = execFileAsync(path, ['--version'], { timeout: 5000 })
      .then(({ stdout }) => stdout.trim())
      .catch(() => '');
    versionCache.set(path, cached);
  }
  return cached;
}

const FS_NAMES: Record<number, string> = {
  0xef53: 'extfs',
  0x58465342: 'xfs',
  0x9123683e: 'btrfs',
  0x01021994: 'tmpfs',
  0x794c7630: 'overlayfs',
  0x2fc12fc1: 'zfs',
};

/** The backing filesystem's name as containers/storage reports it ("extfs" for ext2/3/4). */
export function filesystemName(type: number): string {
  return FS_NAMES[type] ?? `0x${type.toString(16)}`;
}
