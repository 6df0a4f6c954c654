/**
 * Proves the generated config.json is accepted by the real runtime: a busybox rootfs is run with
 * `runc run` for the defaults, the captured podman-remote and docker CLI bodies, a privileged
 * container, and an exec session (`runc exec -p` with the generated process.json).
 */
import t from 'tap';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, copyFileSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { generateOciConfig, type OciContext } from '../../../src/spec/oci.js';
import { generateExecProcess } from '../../../src/spec/process.js';
import { dockerToSpecgen } from '../../../src/spec/dockerToSpecgen.js';
import { capabilitiesFromMask } from '../../../src/spec/capabilities.js';
import type { SpecGenerator } from '../../../schemas/containers.js';
import type { DockerCreateBody } from '../../../schemas/compat-containers.js';
import type { OciSpec } from '../../../src/spec/ociTypes.js';
import { dockerCliCreateBody, podmanRemoteCreateBody } from './captured-bodies.js';

const run = promisify(execFile);
const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n';
const GROUP = 'root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\n';

/** The daemon's own limits, as the engine would read them. */
function hostLimits(): OciContext['hostLimits'] {
  const text = readFileSync('/proc/self/limits', 'utf8');
  const pick = (label: string) => {
    const m = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(text);
    const num = (s: string | undefined) => (s === undefined || s === 'unlimited' ? 1048576 : Number(s));
    return { soft: num(m?.[1]), hard: num(m?.[2]) };
  };
  return { nofile: pick('Max open files'), nproc: pick('Max processes') };
}
const capBnd = /^CapBnd:\s+(\S+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';

const dir = mkdtempSync('/tmp/psrunc-');
const rootfs = join(dir, 'rootfs');
const ids: string[] = [];
t.teardown(() => {
  for (const id of ids) spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
});

// A busybox root filesystem with the mount points the config needs.
for (const d of ['bin', 'etc', 'proc', 'dev', 'sys', 'tmp', 'mnt', 'run', 'var/tmp', 'root', 'home', 't']) mkdirSync(join(rootfs, d), { recursive: true });
copyFileSync('/bin/busybox', join(rootfs, 'bin/busybox'));
for (const applet of ['sh', 'echo', 'id', 'cat', 'hostname', 'sleep', 'touch', 'tr', 'grep', 'ls']) symlinkSync('busybox', join(rootfs, 'bin', applet));
// tmpcopyup gives a tmpfs the mode of the directory it covers: make /t world-writable like /tmp.
chmodSync(join(rootfs, 't'), 0o1777);
writeFileSync(join(rootfs, 'etc/passwd'), PASSWD);
writeFileSync(join(rootfs, 'etc/group'), GROUP);
const shared = join(dir, 'shared');
mkdirSync(shared);
writeFileSync(join(shared, 'hello.txt'), 'from the host\n');

function context(extra: Partial<OciContext> = {}): OciContext {
  const id = randomBytes(32).toString('hex');
  return { id, rootfsPath: rootfs, passwd: PASSWD, group: GROUP, hostLimits: hostLimits(), boundingCaps: capabilitiesFromMask(capBnd), ...extra };
}

/** Writes the bundle and runs it to completion; returns stdout. */
async function runBundle(config: OciSpec, id: string): Promise<string> {
  const bundle = join(dir, id.slice(0, 12));
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  ids.push(id);
  try {
    const { stdout } = await run('runc', ['run', '--bundle', bundle, id], { timeout: 20000 });
    return stdout;
  } finally {
    spawnSync('runc', ['delete', '-f', id], { stdio: 'ignore' });
  }
}

t.test('runc is here', async (t) => {
  t.ok(existsSync('/usr/sbin/runc') || existsSync('/usr/bin/runc'), 'runc installed (scripts/setup.sh)');
});

t.test('defaults run: rlimits, mounts, caps, hostname accepted', async (t) => {
  const ctx = context();
  const spec: SpecGenerator = {
    image: 'busybox',
    command: ['sh', '-c', 'echo ok; id -u; ulimit -Sn; ulimit -Hn; hostname; grep CapEff /proc/self/status; cat /proc/self/mountinfo | grep -c " /dev/shm "; echo "$HOSTNAME $HOME"'],
  };
  const out = (await runBundle(generateOciConfig(spec, {}, ctx), ctx.id)).trim().split('\n');
  t.equal(out[0], 'ok');
  t.equal(out[1], '0');
  t.equal(out[2], String(ctx.hostLimits.nofile.soft));
  t.equal(out[3], String(ctx.hostLimits.nofile.hard));
  t.equal(out[4], ctx.id.slice(0, 12));
  t.equal(out[5], 'CapEff:\t00000000800405fb', 'podman\'s 11 default capabilities');
  t.equal(out[6], '1', '/dev/shm mounted');
  t.equal(out[7], `${ctx.id.slice(0, 12)} /root`);
});

t.test('the captured podman-remote body runs (init, user, read-only, bind, tmpfs, ulimit, memory, pids)', async (t) => {
  const ctx = context({ initPath: '/usr/bin/catatonit' });
  const spec = structuredClone(podmanRemoteCreateBody) as SpecGenerator;
  spec.mounts = spec.mounts?.map((m) => (m.destination === '/mnt' ? { ...m, source: shared } : m)) ?? null;
  spec.command = ['sh', '-c', 'id -u; id -g; ulimit -Sn; ulimit -Hn; tr "\\0" " " < /proc/1/cmdline; echo; cat /mnt/hello.txt; touch /mnt/x 2>/dev/null && echo mnt-rw || echo mnt-ro; touch /x 2>/dev/null && echo root-rw || echo root-ro; touch /t/x && echo tmpfs-rw; cat /sys/fs/cgroup/pids/pids.max; echo $A'];
  t.ok(existsSync('/usr/bin/catatonit'), 'catatonit installed');
  const config = generateOciConfig(spec, {}, ctx);
  t.equal(config.root.readonly, true);
  const out = (await runBundle(config, ctx.id)).trim().split('\n');
  t.strictSame(out, [
    '1000', '1000', '100', '200',
    `/run/podman-init -- sh -c ${spec.command[2]} `,
    'from the host', 'mnt-ro', 'root-ro', 'tmpfs-rw', '50', 'B',
  ]);
});

t.test('the captured docker CLI body runs after conversion', async (t) => {
  const ctx = context({ initPath: '/usr/bin/catatonit' });
  const body = structuredClone(dockerCliCreateBody) as DockerCreateBody;
  body.HostConfig!.Binds = [`${shared}:/mnt:ro`];
  body.Cmd = ['-c', 'id -u; cat /mnt/hello.txt; cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; grep -c " /t " /proc/self/mountinfo'];
  const config = generateOciConfig(dockerToSpecgen(body), {}, ctx);
  const out = (await runBundle(config, ctx.id)).trim().split('\n');
  t.strictSame(out, ['1000', 'from the host', '50000', '1']);
});

t.test('a privileged container runs with the daemon\'s bounding set', async (t) => {
  const ctx = context();
  const config = generateOciConfig({ image: 'b', privileged: true, command: ['sh', '-c', 'grep CapEff /proc/self/status'] }, {}, ctx);
  const out = (await runBundle(config, ctx.id)).trim();
  t.equal(out, `CapEff:\t${capBnd}`);
});

t.test('an exec session process is accepted by runc exec', async (t) => {
  const ctx = context();
  const spec: SpecGenerator = { image: 'b', command: ['sleep', '30'], env: { CTR: 'yes' } };
  const config = generateOciConfig(spec, {}, ctx);
  const bundle = join(dir, ctx.id.slice(0, 12));
  mkdirSync(bundle);
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  ids.push(ctx.id);
  // Detached: the container keeps runc's stdio, so give it /dev/null rather than our pipes.
  const starter = spawn('runc', ['run', '-d', '--bundle', bundle, ctx.id], { stdio: 'ignore' });
  const [code] = (await once(starter, 'exit')) as [number | null];
  t.equal(code, 0, 'runc run -d');
  try {
    const proc = generateExecProcess({ process: config.process, user: '', passwd: PASSWD, group: GROUP },
      { cmd: ['sh', '-c', 'id -u; echo $CTR $X; pwd'], env: { X: 'exec' }, workingDir: '/tmp', user: 'nobody', tty: false });
    const file = join(bundle, 'exec.json');
    writeFileSync(file, JSON.stringify(proc));
    const { stdout } = await run('runc', ['exec', '-p', file, ctx.id], { timeout: 20000 });
    t.strictSame(stdout.trim().split('\n'), ['65534', 'yes exec', '/tmp']);
  } finally {
    spawnSync('runc', ['delete', '-f', ctx.id], { stdio: 'ignore' });
  }
});
