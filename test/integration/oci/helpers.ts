/**
 * Fixtures for the OCI adapter's integration tests: a busybox rootfs, bundles whose config.json starts from
 * `runc spec`, a ConmonRuntime isolated in its own runc --root, and leak checks for conmon processes.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import type { Test } from 'tap';
import { ConmonRuntime } from '../../../src/oci/conmon.js';
import type { AttachConnection, AttachPacket, ContainerRunSpec } from '../../../src/oci/types.js';

export const RUNC = '/usr/sbin/runc';
export const CONMON = '/usr/bin/conmon';
const BUSYBOX = '/bin/busybox';

export interface TestEnv {
  dir: string;
  rootfs: string;
  runtime: ConmonRuntime;
  /** runc --root of this environment: every container created here is isolated from the host's. */
  runcRoot: string;
  newContainer(opts: BundleOptions): ContainerRunSpec;
  cleanup(): Promise<void>;
}

export interface BundleOptions {
  args: string[];
  terminal?: boolean;
  stdin?: boolean;
  rlimits?: { type: string; hard: number; soft: number }[];
  logDriver?: 'k8s-file' | 'none';
  /** Run in the host's PID namespace, so the process is not a namespace init (which ignores unhandled TERM). */
  hostPid?: boolean;
}

let specTemplate: Record<string, unknown> | undefined;

/** `runc spec` output, generated once per process. */
function runcSpec(): Record<string, unknown> {
  if (!specTemplate) {
    const tmp = mkdtempSync('/tmp/po-spec-');
    try {
      execFileSync(RUNC, ['spec', '--bundle', tmp]);
      specTemplate = JSON.parse(readFileSync(join(tmp, 'config.json'), 'utf8')) as Record<string, unknown>;
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return structuredClone(specTemplate);
}

export function makeConfig(rootfs: string, opts: BundleOptions): Record<string, unknown> {
  const spec = runcSpec();
  const proc = spec.process as Record<string, unknown>;
  proc.args = opts.args;
  proc.terminal = opts.terminal ?? false;
  proc.env = ['PATH=/bin', 'TERM=xterm', 'HOME=/'];
  // runc spec asks for nofile 1024; keep every limit below the daemon's own hard limits.
  proc.rlimits = opts.rlimits ?? [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }];
  spec.root = { path: rootfs, readonly: false };
  spec.hostname = 'oci-test';
  if (opts.hostPid) {
    const linux = spec.linux as { namespaces: { type: string }[] };
    linux.namespaces = linux.namespaces.filter((ns) => ns.type !== 'pid');
  }
  return spec;
}

export function makeRootfs(dir: string): string {
  const rootfs = join(dir, 'rootfs');
  mkdirSync(join(rootfs, 'bin'), { recursive: true });
  for (const d of ['proc', 'dev', 'sys', 'tmp', 'etc']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(BUSYBOX, join(rootfs, 'bin', 'busybox'));
  // Relative links: `busybox --install -s` would point them at the host path of the binary.
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  for (const applet of applets) symlinkSync('busybox', join(rootfs, 'bin', applet));
  return rootfs;
}

export function makeTestEnv(): TestEnv {
  const dir = mkdtempSync('/tmp/po-');
  const rootfs = makeRootfs(dir);
  const runcRoot = join(dir, 'runc');
  mkdirSync(runcRoot);
  const logger = pino({ level: process.env.OCI_TEST_LOG_LEVEL ?? 'silent' });
  const runtime = new ConmonRuntime({
    runtimePath: RUNC,
    runtimeName: 'runc',
    conmonPath: CONMON,
    runRoot: join(dir, 'run'),
    logger,
    runtimeFlags: ['--root', runcRoot],
    createTimeoutMs: 20_000,
  });
  const ids: string[] = [];
  return {
    dir,
    rootfs,
    runtime,
    runcRoot,
    newContainer(opts: BundleOptions): ContainerRunSpec {
      const id = randomBytes(32).toString('hex');
      ids.push(id);
      const base = join(dir, 'c', id.slice(0, 8));
      const bundleDir = join(base, 'b');
      mkdirSync(bundleDir, { recursive: true });
      writeFileSync(join(bundleDir, 'config.json'), JSON.stringify(makeConfig(rootfs, opts)));
      return {
        id,
        name: `t-${id.slice(0, 6)}`,
        bundleDir,
        runDir: join(base, 'r'),
        exitDir: join(dir, 'exits'),
        logPath: join(base, 'ctr.log'),
        logDriver: opts.logDriver ?? 'k8s-file',
        terminal: opts.terminal ?? false,
        stdin: opts.stdin ?? false,
      };
    },
    async cleanup(): Promise<void> {
      for (const pid of conmonPidsUnder(dir)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
      for (const id of ids) {
        try {
          execFileSync(RUNC, ['--root', runcRoot, 'delete', '--force', id], { stdio: 'ignore' });
        } catch {
          // not there
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * PIDs of conmon processes whose command line mentions `marker` (a test directory). A conmon in the middle
 * of exiting has already lost its command line but may still hold its files (ctl, attach): it is counted
 * too, whoever it belongs to, until it is a zombie.
 */
export function conmonPidsUnder(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, 'utf8').trim() !== 'conmon') continue;
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(marker)) pids.push(Number(entry));
      else if (cmdline === '') {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
        if (state !== 'Z' && state !== 'X') pids.push(Number(entry));
      }
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

/** Wait until no conmon of this environment is left (they exit right after their container). */
export async function waitNoConmon(marker: string, timeoutMs = 5000): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = conmonPidsUnder(marker);
    if (pids.length === 0 || Date.now() > deadline) return pids;
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Collected {
  stdout: string;
  stderr: string;
  packets: AttachPacket[];
}

/** Read an attach connection to its end. */
export async function collect(conn: AttachConnection): Promise<Collected> {
  const packets: AttachPacket[] = [];
  for await (const p of conn.packets) packets.push(p as AttachPacket);
  const text = (pipe: number): string =>
    Buffer.concat(packets.filter((p) => p.pipe === pipe).map((p) => p.data)).toString('utf8');
  return { stdout: text(2), stderr: text(3), packets };
}

/** Resolve once the accumulated stdout (pipe 2) of a connection matches. Leaves the stream flowing. */
export function waitForOutput(conn: AttachConnection, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => {
      conn.packets.off('data', onData);
      reject(new Error(`timed out waiting for ${pattern}; saw ${JSON.stringify(seen)}`));
    }, timeoutMs);
    const onData = (p: AttachPacket): void => {
      seen += p.data.toString('utf8');
      if (pattern.test(seen)) {
        clearTimeout(timer);
        conn.packets.off('data', onData);
        resolve(seen);
      }
    };
    conn.packets.on('data', onData);
  });
}

/** A subtest that must leave no conmon of the environment behind. */
export function leakCheckedTest(t: Test, getEnv: () => TestEnv, name: string, fn: (t: Test) => Promise<void>): void {
  t.test(name, async (t) => {
    await fn(t);
    t.same(await waitNoConmon(getEnv().dir), [], 'no conmon left behind');
  });
}
