import t from 'tap';
import { generateOciConfig, resolveCommand, resolveEnv, resolveStopSignal, toOciResources, type OciContext, type ImageConfigLike } from '../../../src/spec/oci.js';
import { DEFAULT_CAPABILITIES, capabilitiesFromMask } from '../../../src/spec/capabilities.js';
import type { SpecGenerator } from '../../../schemas/containers.js';
import type { OciMount } from '../../../src/spec/ociTypes.js';
import { BadRequestError } from '../../../src/errors.js';

const ID = '0123456789abcdef'.repeat(4);
const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\n';
const group = 'root:x:0:\nwheel:x:10:root\napp:x:1000:\n';
const ctx: OciContext = {
  id: ID,
  rootfsPath: '/var/lib/podserve/overlay/x/merged',
  passwd,
  group,
  hostLimits: { nofile: { soft: 20000, hard: 20000 }, nproc: { soft: 4096, hard: 8192 } },
};
const image: ImageConfigLike = {
  Env: ['PATH=/usr/bin:/bin', 'IMG=1'],
  Cmd: ['sh'],
  WorkingDir: '/srv',
  Labels: { a: 'b' },
};
const gen = (spec: Partial<SpecGenerator>, img: ImageConfigLike | undefined = image, c: Partial<OciContext> = {}) =>
  generateOciConfig({ image: 'busybox', ...spec }, img, { ...ctx, ...c });
const mount = (mounts: OciMount[], dest: string) => mounts.find((m) => m.destination === dest);

t.test('command and entrypoint merge like podman', async (t) => {
  const img: ImageConfigLike = { Entrypoint: ['/entry'], Cmd: ['default-arg'] };
  const table: Array<[string, Partial<SpecGenerator>, ImageConfigLike | undefined, string[]]> = [
    ['image entrypoint + image cmd', {}, img, ['/entry', 'default-arg']],
    ['command replaces image cmd', { command: ['x'] }, img, ['/entry', 'x']],
    ['entrypoint drops image cmd', { entrypoint: ['/other'] }, img, ['/other']],
    ['entrypoint + command', { entrypoint: ['/other'], command: ['y'] }, img, ['/other', 'y']],
    ['entrypoint [""] clears it', { entrypoint: [''], command: ['ls'] }, img, ['ls']],
    ['empty entrypoint array keeps image cmd', { entrypoint: [] }, img, ['default-arg']],
    ['null entrypoint means unset', { entrypoint: null }, img, ['/entry', 'default-arg']],
    ['no image', { command: ['echo', 'hi'] }, undefined, ['echo', 'hi']],
    ['image cmd only', {}, { Cmd: ['sh', '-c', 'x'] }, ['sh', '-c', 'x']],
  ];
  for (const [name, spec, im, want] of table) t.strictSame(resolveCommand({ image: 'i', ...spec }, im), want, name);
  t.throws(() => resolveCommand({ image: 'i' }, {}), { message: /no command or entrypoint provided/ });
  t.throws(() => resolveCommand({ image: 'i', entrypoint: [''] }, img), { message: /no command or entrypoint provided/ }, '[""] with no command leaves nothing');
});

t.test('stop signal', async (t) => {
  t.equal(resolveStopSignal({ stop_signal: 10 }, image), 10);
  t.equal(resolveStopSignal({ stop_signal: 'SIGINT' }, image), 2);
  t.equal(resolveStopSignal({}, { StopSignal: 'SIGQUIT' }), 3);
  t.equal(resolveStopSignal({}, undefined), 15);
  t.throws(() => resolveStopSignal({}, { StopSignal: 'NOPE' }), { message: 'image StopSignal: invalid signal: NOPE' });
});

t.test('environment order and overrides', async (t) => {
  const env = resolveEnv({ env: { IMG: '2', USER_VAR: 'u' } }, image);
  t.strictSame([...env], [['PATH', '/usr/bin:/bin'], ['TERM', 'xterm'], ['container', 'podman'], ['IMG', '2'], ['USER_VAR', 'u']]);
  t.strictSame([...resolveEnv({ unsetenv: ['TERM'] }, image).keys()], ['PATH', 'container', 'IMG']);
  t.strictSame([...resolveEnv({ unsetenvall: true, env: { A: 'b' } }, image)], [['A', 'b']]);
  t.equal(resolveEnv({ envmerge: ['PATH=${PATH}:/extra'] }, image).get('PATH'), '/usr/bin:/bin:/extra');
  t.equal(resolveEnv({ env_host: true }, undefined, { HOSTVAR: 'h' }).get('HOSTVAR'), 'h');
  t.notOk(resolveEnv({}, undefined).has('container'), 'container=podman comes with an image only');
});

t.test('defaults for a plain container', async (t) => {
  const cfg = gen({ command: ['echo', 'ok'] });
  t.equal(cfg.ociVersion, '1.0.2-dev');
  t.strictSame(cfg.process.args, ['echo', 'ok']);
  t.equal(cfg.process.cwd, '/srv', 'image WorkingDir');
  t.equal(cfg.process.terminal, false);
  t.equal(cfg.process.noNewPrivileges, false);
  t.strictSame(cfg.process.user, { uid: 0, gid: 0, umask: 0o022, additionalGids: [10] }, 'root plus its group memberships');
  t.strictSame(cfg.process.env, ['PATH=/usr/bin:/bin', 'TERM=xterm', 'container=podman', 'IMG=1', `HOSTNAME=${ID.slice(0, 12)}`, 'HOME=/root']);
  t.equal(cfg.hostname, ID.slice(0, 12));
  const caps = [...DEFAULT_CAPABILITIES].sort();
  t.strictSame(cfg.process.capabilities, { bounding: caps, effective: caps, inheritable: [], permitted: caps, ambient: [] });
  t.strictSame(cfg.process.rlimits, [
    { type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 },
    { type: 'RLIMIT_NPROC', hard: 8192, soft: 4096 },
  ], 'the daemon\'s own limits, never podman\'s 1048576');
  t.strictSame(cfg.root, { path: ctx.rootfsPath, readonly: false });
  t.strictSame(cfg.linux.namespaces, [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]);
  t.equal(cfg.linux.cgroupsPath, `/podserve/${ID}`);
  t.strictSame(cfg.linux.resources, { devices: [{ allow: false, access: 'rwm' }], pids: { limit: 2048 } });
  t.strictSame(cfg.linux.sysctl, { 'net.ipv4.ping_group_range': '0 0' });
  t.ok(cfg.linux.maskedPaths?.includes('/proc/kcore'));
  t.equal(cfg.linux.maskedPaths?.length, 11);
  t.strictSame(cfg.linux.readonlyPaths, ['/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']);
  t.equal(cfg.linux.seccomp, undefined, 'no profile passed');
  t.strictSame(cfg.mounts.map((m) => m.destination), ['/proc', '/dev', '/sys', '/dev/pts', '/dev/mqueue', '/dev/shm', '/sys/fs/cgroup']);
  t.strictSame(mount(cfg.mounts, '/dev/shm'), { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] });
  t.strictSame(mount(cfg.mounts, '/sys'), { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] });
  t.strictSame(mount(cfg.mounts, '/sys/fs/cgroup')?.options, ['rprivate', 'nosuid', 'noexec', 'nodev', 'relatime', 'ro']);
  t.strictSame(cfg.annotations, {
    'io.container.manager': 'libpod',
    'io.podman.annotations.autoremove': 'FALSE',
    'io.podman.annotations.privileged': 'FALSE',
    'io.podman.annotations.init': 'FALSE',
    'io.podman.annotations.publish-all': 'FALSE',
    'org.opencontainers.image.stopSignal': '15',
  });
  t.notOk('oomScoreAdj' in cfg.process);
  t.notOk('devices' in cfg.linux);
  t.same(JSON.parse(JSON.stringify(cfg)), cfg, 'serialises to JSON without loss (no undefined holes that matter)');
});

t.test('users', async (t) => {
  const app = gen({ command: ['id'], user: 'app' });
  t.strictSame(app.process.user, { uid: 1000, gid: 1000, umask: 18, additionalGids: [1000] });
  t.ok(app.process.env.includes('HOME=/home/app'));
  t.strictSame(app.process.capabilities.effective, [], 'a non-root user gets no effective caps by default');
  t.strictSame(app.process.capabilities.bounding, [...DEFAULT_CAPABILITIES].sort());
  const withCap = gen({ command: ['id'], user: 'app', cap_add: ['net_bind_service'] });
  t.strictSame(withCap.process.capabilities.effective, ['CAP_NET_BIND_SERVICE']);
  t.strictSame(withCap.process.capabilities.ambient, ['CAP_NET_BIND_SERVICE']);
  t.strictSame(gen({ command: ['id'], user: '1000:1000' }).process.user, { uid: 1000, gid: 1000, umask: 18, additionalGids: [1000] });
  t.strictSame(gen({ command: ['id'], user: '4242', groups: ['wheel', '77'] }).process.user, { uid: 4242, gid: 0, umask: 18, additionalGids: [0, 10, 77] });
  t.strictSame(gen({ command: ['id'] }, { ...image, User: 'app' }).process.user.uid, 1000, 'image User applies');
  t.ok(gen({ command: ['id'], env: { HOME: '/custom' } }).process.env.includes('HOME=/custom'));
  t.equal(gen({ command: ['id'], umask: '0077' }).process.user.umask, 0o077);
  t.throws(() => gen({ command: ['id'], user: 'ghost' }), { message: 'user: unable to find user ghost: no matching entries in passwd file', status: 400 });
  t.throws(() => gen({ command: ['id'] }, { ...image, User: 'ghost' }), { message: /^image User: unable to find user ghost/ });
});

t.test('capabilities and privileged', async (t) => {
  const added = gen({ command: ['x'], cap_add: ['NET_ADMIN', 'sys_ptrace'], cap_drop: ['CHOWN'] });
  t.ok(added.process.capabilities.bounding.includes('CAP_NET_ADMIN'));
  t.ok(added.process.capabilities.bounding.includes('CAP_SYS_PTRACE'));
  t.notOk(added.process.capabilities.bounding.includes('CAP_CHOWN'));
  t.strictSame(gen({ command: ['x'], cap_drop: ['ALL'] }).process.capabilities.bounding, []);
  t.throws(() => gen({ command: ['x'], cap_add: ['CAP_NOPE'] }), { message: 'cap_add: unknown capability "CAP_NOPE"' });

  const hostCaps = capabilitiesFromMask('000001fffeffffff');
  const priv = gen({ command: ['x'], privileged: true }, image, {
    boundingCaps: hostCaps,
    hostDevices: [{ path: '/dev/loop0', type: 'b', major: 7, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }],
  });
  t.strictSame(priv.process.capabilities.bounding, hostCaps, 'all the daemon may grant');
  t.strictSame(priv.process.capabilities.effective, hostCaps);
  t.notOk(priv.linux.maskedPaths);
  t.notOk(priv.linux.readonlyPaths);
  t.strictSame(priv.linux.resources?.devices, [{ allow: true, access: 'rwm' }]);
  t.strictSame(priv.linux.devices, [{ path: '/dev/loop0', type: 'b', major: 7, minor: 0, fileMode: 0o660, uid: 0, gid: 6 }]);
  t.strictSame(mount(priv.mounts, '/sys')?.options, ['rprivate', 'nosuid', 'noexec', 'nodev', 'rw']);
  t.strictSame(mount(priv.mounts, '/sys/fs/cgroup')?.options?.at(-1), 'rw');
  t.equal(priv.annotations['io.podman.annotations.privileged'], 'TRUE');
  const seccomp = { defaultAction: 'SCMP_ACT_ERRNO' };
  t.equal(gen({ command: ['x'], privileged: true }, image, { seccompProfile: seccomp }).linux.seccomp, undefined, 'privileged drops the default profile');
  t.strictSame(gen({ command: ['x'] }, image, { seccompProfile: seccomp }).linux.seccomp, seccomp);
  t.equal(gen({ command: ['x'], seccomp_profile_path: 'unconfined' }, image, { seccompProfile: seccomp }).linux.seccomp, undefined);
});

t.test('rlimits', async (t) => {
  const cfg = gen({ command: ['x'], r_limits: [{ type: 'nofile', hard: 200, soft: 100 }, { type: 'RLIMIT_CORE', hard: 0, soft: 0 }] });
  t.strictSame(cfg.process.rlimits, [
    { type: 'RLIMIT_NOFILE', hard: 200, soft: 100 },
    { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
    { type: 'RLIMIT_NPROC', hard: 8192, soft: 4096 },
  ]);
  t.strictSame(gen({ command: ['x'] }, image, { hostLimits: { nofile: { soft: 50000, hard: 1024 }, nproc: { soft: 1, hard: 2 } } }).process.rlimits[0],
    { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }, 'soft never above hard');
  t.throws(() => gen({ command: ['x'], r_limits: [{ type: 'nofiles', hard: 1, soft: 1 }] }), { message: 'r_limits[0].type: invalid rlimit type "nofiles"' });
  t.throws(() => gen({ command: ['x'], r_limits: [{ type: 'nproc', hard: 1, soft: 2 }] }), { message: /r_limits\[0\]: soft limit 2 for nproc is larger than the hard limit 1/ });
});

t.test('resources', async (t) => {
  const cfg = gen({
    command: ['x'],
    resource_limits: {
      memory: { limit: 67108864, reservation: 33554432, swap: 134217728, swappiness: null },
      cpu: { shares: 512, quota: 50000, period: 100000, cpus: '', mems: null as unknown as string },
      pids: { limit: 50 },
    },
  });
  t.strictSame(cfg.linux.resources, {
    memory: { limit: 67108864, reservation: 33554432, swap: 134217728 },
    cpu: { shares: 512, quota: 50000, period: 100000 },
    pids: { limit: 50 },
    devices: [{ allow: false, access: 'rwm' }],
  });
  t.strictSame(gen({ command: ['x'], cpu_period: 100000, cpu_quota: 20000 }).linux.resources?.cpu, { period: 100000, quota: 20000 });
  t.notOk(gen({ command: ['x'] }, image, { defaultPidsLimit: 0 }).linux.resources?.pids, 'no default pids limit');
  const errors: Array<[Partial<SpecGenerator>, RegExp]> = [
    [{ resource_limits: { memory: { limit: -5 } } }, /^resource_limits\.memory\.limit: invalid value -5/],
    [{ resource_limits: { memory: { limit: 100, swap: 50 } } }, /^resource_limits\.memory\.swap: minimum memoryswap/],
    [{ resource_limits: { memory: { swap: 50 } } }, /^resource_limits\.memory\.swap: you should always set a memory limit/],
    [{ resource_limits: { memory: { limit: 100, reservation: 200 } } }, /^resource_limits\.memory\.reservation/],
    [{ resource_limits: { memory: { swappiness: 101 } } }, /swappiness range is 0-100/],
    [{ resource_limits: { cpu: { period: 10 } } }, /^resource_limits\.cpu\.period/],
    [{ resource_limits: { cpu: { quota: 10 } } }, /^resource_limits\.cpu\.quota/],
    [{ resource_limits: { cpu: { cpus: 'a-b' } } }, /^resource_limits\.cpu\.cpus: invalid value "a-b"/],
    [{ resource_limits: { pids: { limit: -2 } } }, /^resource_limits\.pids\.limit/],
    [{ resource_limits: { blockIO: { weight: 5 } } }, /blkio weight is from 10 to 1000/],
  ];
  for (const [spec, message] of errors) {
    const err = t.throws(() => gen({ command: ['x'], ...spec }), { message }) as unknown;
    t.ok(err instanceof BadRequestError, `${String(message)} is a 400`);
  }
  t.strictSame(toOciResources({ memory: { limit: 1, swap: null }, pids: { limit: null as unknown as number } }), { memory: { limit: 1 } }, 'update bodies drop nulls');
  t.strictSame(toOciResources({ memory: { limit: 1, bogus: 2 } as never, cpu: { shares: 2, cpus: '' } }), { memory: { limit: 1 }, cpu: { shares: 2 } }, 'unknown keys and empty cpusets dropped');
});

t.test('devices', async (t) => {
  const lookupDevice = (p: string) => (p === '/dev/fuse' ? { path: p, type: 'c' as const, major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 } : undefined);
  const cfg = gen({ command: ['x'], devices: [{ path: '/dev/fuse' }, { path: '/dev/fuse:/dev/myfuse:r' }] }, image, { lookupDevice });
  t.strictSame(cfg.linux.devices, [
    { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
    { path: '/dev/myfuse', type: 'c', major: 10, minor: 229, fileMode: 0o666, uid: 0, gid: 0 },
  ]);
  t.strictSame(cfg.linux.resources?.devices, [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'rwm' },
    { allow: true, type: 'c', major: 10, minor: 229, access: 'r' },
  ]);
  t.throws(() => gen({ command: ['x'], devices: [{ path: '/dev/nope' }] }, image, { lookupDevice }), { message: 'devices[0]: /dev/nope is not a valid device' });
  t.throws(() => gen({ command: ['x'], devices: [{ path: '/dev/fuse:rwx' }] }, image, { lookupDevice }), { message: 'devices[0]: invalid device mode "rwx"' });
});

t.test('mounts', async (t) => {
  const cfg = gen({
    command: ['x'],
    mounts: [
      { destination: '/mnt', type: 'bind', source: '/tmp', options: ['ro'] },
      { destination: '/t', type: 'tmpfs', source: 'tmpfs' },
      { destination: '/data/sub/', type: 'bind', source: '/srv/data', options: ['rshared', 'bind'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['size=1m'] },
    ],
  });
  t.strictSame(mount(cfg.mounts, '/mnt'), { destination: '/mnt', type: 'bind', source: '/tmp', options: ['ro', 'rprivate', 'rbind'] });
  t.strictSame(mount(cfg.mounts, '/t'), { destination: '/t', type: 'tmpfs', source: 'tmpfs', options: ['rw', 'rprivate', 'tmpcopyup'] });
  t.strictSame(mount(cfg.mounts, '/data/sub')?.options, ['rshared', 'bind', 'rw']);
  t.strictSame(mount(cfg.mounts, '/dev/shm')?.options, ['size=1m', 'rw', 'rprivate', 'tmpcopyup'], 'user /dev/shm replaces the default');
  t.equal(cfg.mounts.filter((m) => m.destination === '/dev/shm').length, 1);
  t.equal(cfg.linux.rootfsPropagation, 'shared', 'a shared bind needs a shared root');
  const depth = cfg.mounts.map((m) => m.destination.split('/').length);
  t.strictSame(depth, [...depth].sort((a, b) => a - b), 'parents before children');

  const userDev = gen({ command: ['x'], mounts: [{ destination: '/dev', type: 'bind', source: '/dev' }] });
  t.notOk(userDev.mounts.some((m) => m.destination.startsWith('/dev/')), 'a user /dev hides the defaults under it');

  const errors: Array<[Partial<SpecGenerator>, string]> = [
    [{ mounts: [{ destination: 'rel', type: 'bind', source: '/a' }] }, 'mounts[0].destination: invalid container path "rel", must be an absolute path'],
    [{ mounts: [{ destination: '/a', type: 'nfs', source: 'x' }] }, 'mounts[0].type: invalid mount type "nfs"'],
    [{ mounts: [{ destination: '/a', type: 'bind', source: 'relative' }] }, 'mounts[0].source: bind mount source "relative" must be an absolute path'],
    [{ mounts: [{ destination: '/a', type: 'bind', source: '/a', options: ['ro', 'rw'] }] }, "mounts[0].options: only one of 'rw' and 'ro' can be used"],
    [{ mounts: [{ destination: '/a', type: 'bind', source: '/a', options: ['size=1m'] }] }, "mounts[0].options: the 'size' option is only allowed with tmpfs mounts"],
    [{ mounts: [{ destination: '/a', type: 'tmpfs', options: ['rbind'] }] }, "mounts[0].options: the 'bind' and 'rbind' options are not allowed with tmpfs mounts"],
    [{ mounts: [{ destination: '/a', type: 'bind', source: '/a', options: ['bogus'] }] }, 'mounts[0].options: unknown mount option "bogus"'],
    [{ mounts: [{ destination: '/a', type: 'tmpfs' }, { destination: '/a/', type: 'tmpfs' }] }, 'mounts[1]: duplicate mount destination "/a"'],
    [{ volumes: [{ Name: 'vol', Dest: '/v' }] }, 'volumes[0]: no such volume "vol"'],
  ];
  for (const [spec, message] of errors) t.throws(() => gen({ command: ['x'], ...spec }), { message, status: 400 }, message);

  const vol = gen({ command: ['x'], volumes: [{ Name: 'vol', Dest: '/v', Options: ['ro', 'z'] }] }, image, { volumeMountpoints: { vol: '/var/lib/podserve/volumes/vol/_data' } });
  t.strictSame(mount(vol.mounts, '/v'), { destination: '/v', type: 'bind', source: '/var/lib/podserve/volumes/vol/_data', options: ['ro', 'rprivate', 'rbind'] });
});

t.test('engine bind mounts, read-only, shm, init', async (t) => {
  const bindMounts = { '/etc/hosts': '/run/p/hosts', '/etc/resolv.conf': '/run/p/resolv.conf', '/etc/hostname': '/run/p/hostname' };
  const cfg = gen({ command: ['x'], read_only_filesystem: true, mounts: [{ destination: '/etc/hosts', type: 'bind', source: '/my/hosts' }] }, image, { bindMounts });
  t.equal(cfg.root.readonly, true);
  t.equal(mount(cfg.mounts, '/etc/hosts')?.source, '/my/hosts', 'the user mount wins');
  t.strictSame(mount(cfg.mounts, '/etc/resolv.conf'), { destination: '/etc/resolv.conf', type: 'bind', source: '/run/p/resolv.conf', options: ['bind', 'rprivate', 'ro', 'nosuid', 'noexec', 'nodev'] });
  t.strictSame(mount(gen({ command: ['x'] }, image, { bindMounts }).mounts, '/etc/hostname')?.options, ['bind', 'rprivate']);

  t.equal(mount(gen({ command: ['x'], shm_size: 1048576 }).mounts, '/dev/shm')?.options?.at(-1), 'size=1024k');
  t.equal(mount(gen({ command: ['x'], shm_size: 1000 }).mounts, '/dev/shm')?.options?.at(-1), 'size=1000');
  t.notOk(mount(gen({ command: ['x'], ipcns: { nsmode: 'none' } }).mounts, '/dev/shm'), 'ipc=none: no /dev/shm');
  const ipcHost = gen({ command: ['x'], ipcns: { nsmode: 'host' } });
  t.strictSame(mount(ipcHost.mounts, '/dev/shm'), { destination: '/dev/shm', type: 'bind', source: '/dev/shm', options: ['bind', 'rprivate', 'nosuid', 'noexec', 'nodev'] });
  t.notOk(ipcHost.linux.namespaces.some((n) => n.type === 'ipc'));

  const init = gen({ command: ['sleep', '1'], init: true }, image, { initPath: '/usr/bin/catatonit' });
  t.strictSame(init.process.args, ['/run/podman-init', '--', 'sleep', '1']);
  t.strictSame(mount(init.mounts, '/run/podman-init'), { destination: '/run/podman-init', type: 'bind', source: '/usr/bin/catatonit', options: ['bind', 'ro'] });
  t.equal(init.annotations['io.podman.annotations.init'], 'TRUE');
  t.throws(() => gen({ command: ['x'], init: true }), { message: 'init: no path to init binary found but container requested an init' });
  t.throws(() => gen({ command: ['x'], init: true, pidns: { nsmode: 'host' } }, image, { initPath: '/i' }), { message: /PID namespace isn't private/ });
});

t.test('namespaces and hostname', async (t) => {
  const host = gen({ command: ['x'], netns: { nsmode: 'host' }, pidns: { nsmode: 'host' } }, image, { hostHostname: 'myhost' });
  t.strictSame(host.linux.namespaces.map((n) => n.type), ['ipc', 'uts', 'mount']);
  t.equal(host.hostname, 'myhost', 'net=host names the private UTS namespace after the host');
  t.ok(host.process.env.includes('HOSTNAME=myhost'));

  const none = gen({ command: ['x'], netns: { nsmode: 'none' } });
  t.ok(none.linux.namespaces.some((n) => n.type === 'network' && !n.path), 'none: a new netns (loopback only)');
  const bridge = gen({ command: ['x'], netns: { nsmode: 'bridge' } }, image, { namespacePaths: { network: '/run/netns/podserve-1' } });
  t.strictSame(bridge.linux.namespaces[1], { type: 'network', path: '/run/netns/podserve-1' }, 'joins the netns the engine prepared');
  const joined = gen({ command: ['x'], pidns: { nsmode: 'container', value: 'other' } }, image, { namespacePaths: { pid: '/proc/42/ns/pid' } });
  t.strictSame(joined.linux.namespaces[0], { type: 'pid', path: '/proc/42/ns/pid' });
  t.throws(() => gen({ command: ['x'], pidns: { nsmode: 'container', value: 'other' } }), { message: 'pidns: cannot join the pid namespace of container "other": it is not running' });
  t.strictSame(gen({ command: ['x'], netns: { nsmode: 'path', value: '/run/netns/x' } }).linux.namespaces[1], { type: 'network', path: '/run/netns/x' });
  t.throws(() => gen({ command: ['x'], netns: { nsmode: 'path', value: 'x' } }), { message: 'netns: namespace path "x" must be an absolute path' });
  t.throws(() => gen({ command: ['x'], pidns: { nsmode: 'weird' } }), { message: 'pidns: namespace mode "weird" is not supported' });
  t.throws(() => gen({ command: ['x'], userns: { nsmode: 'keep-id' } }), { message: 'userns: namespace mode "keep-id" is not supported' });
  t.ok(gen({ command: ['x'], cgroupns: { nsmode: 'private' } }).linux.namespaces.some((n) => n.type === 'cgroup'));

  const utsHost = gen({ command: ['x'], utsns: { nsmode: 'host' } }, image, { hostHostname: 'myhost' });
  t.equal(utsHost.hostname, undefined, 'no hostname in the host UTS namespace');
  t.ok(utsHost.process.env.includes('HOSTNAME=myhost'));
  t.throws(() => gen({ command: ['x'], utsns: { nsmode: 'host' }, hostname: 'h' }), { message: 'hostname: cannot set hostname when running in the host UTS namespace' });
  const named = gen({ command: ['x'], hostname: 'web', env: { HOSTNAME: 'keep' } });
  t.equal(named.hostname, 'web');
  t.ok(named.process.env.includes('HOSTNAME=keep'), 'an explicit HOSTNAME variable stays');
  t.equal(gen({ command: ['x'] }, image, { hostname: 'given' }).hostname, 'given');
});

t.test('sysctls, masks, annotations, misc', async (t) => {
  const cfg = gen({
    command: ['x'], sysctl: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000' }, mask: ['/secret'], unmask: ['/proc/kcore', '/sys/*'],
    annotations: { mine: 'yes', 'io.container.manager': 'me' }, remove: true, stop_signal: 'SIGUSR1', oom_score_adj: 100,
    no_new_privileges: true, terminal: true, publish_image_ports: true, volumes_from: ['a', 'b'], work_dir: '/w',
    personality: { domain: 'LINUX32' }, cgroup_parent: '/custom',
  }, image, { createdAt: new Date('2026-01-02T03:04:05.678Z') });
  t.strictSame(cfg.linux.sysctl, { 'net.ipv4.ping_group_range': '0 0', 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1000' });
  t.ok(cfg.linux.maskedPaths?.includes('/secret'));
  t.notOk(cfg.linux.maskedPaths?.includes('/proc/kcore'));
  t.notOk(cfg.linux.maskedPaths?.includes('/sys/firmware'), 'glob unmask');
  t.ok(cfg.linux.maskedPaths?.includes('/sys/fs/selinux'), '"*" does not cross "/" (Go filepath.Match)');
  t.strictSame(cfg.annotations, {
    mine: 'yes', 'io.container.manager': 'me', 'io.podman.annotations.autoremove': 'TRUE', 'io.podman.annotations.privileged': 'FALSE',
    'io.podman.annotations.init': 'FALSE', 'io.podman.annotations.publish-all': 'TRUE', 'io.podman.annotations.volumes-from': 'a,b',
    'org.opencontainers.image.stopSignal': '10', 'io.kubernetes.cri-o.Created': '2026-01-02T03:04:05.678Z',
  });
  t.equal(cfg.process.oomScoreAdj, 100);
  t.equal(cfg.process.noNewPrivileges, true);
  t.equal(cfg.process.terminal, true);
  t.equal(cfg.process.cwd, '/w');
  t.strictSame(cfg.linux.personality, { domain: 'LINUX32' });
  t.equal(cfg.linux.cgroupsPath, `/custom/${ID}`);
  t.equal(gen({ command: ['x'] }, image, { cgroupsPath: '/explicit/path' }).linux.cgroupsPath, '/explicit/path');
  t.strictSame(gen({ command: ['x'], netns: { nsmode: 'host' } }).linux.sysctl, undefined, 'net.* defaults skipped with the host network');
  t.strictSame(gen({ command: ['x'], unmask: ['ALL'] }).linux.maskedPaths, undefined);

  const errors: Array<[Partial<SpecGenerator>, string]> = [
    [{ sysctl: { 'kernel.panic': '1' } }, 'sysctl: sysctl "kernel.panic" is not allowed'],
    [{ sysctl: { 'net.core.somaxconn': '1' }, netns: { nsmode: 'host' } }, "sysctl: sysctl net.core.somaxconn=1 can't be set since Network Namespace set to host"],
    [{ mask: ['relative'] }, 'mask[0]: "relative" is not an absolute path'],
    [{ stop_signal: 'SIGNOPE' }, 'stop_signal: invalid signal: SIGNOPE'],
    [{ stop_signal: 0 }, 'stop_signal: invalid signal: 0'],
    [{ restart_policy: 'sometimes' }, 'restart_policy: invalid restart policy "sometimes", must be one of no, always, on-failure, unless-stopped'],
    [{ restart_policy: 'always', restart_tries: 3 }, 'restart_tries: restart retries can only be set when restart_policy is "on-failure"'],
    [{ restart_policy: 'always', remove: true }, /conflicts with --restart/ as unknown as string],
    [{ log_configuration: { driver: 'syslog' } }, /^log_configuration\.driver: invalid log driver "syslog"/ as unknown as string],
    [{ umask: '999' }, 'umask: invalid umask value "999", must be an octal number'],
    [{ work_dir: 'relative' }, 'work_dir: "relative" must be an absolute path'],
    [{ cgroup_parent: 'machine.slice' }, /systemd slice/ as unknown as string],
    [{ apparmor_profile: 'myprofile' }, 'apparmor_profile: apparmor profile "myprofile" specified, but Apparmor is not enabled on this system'],
    [{ image: '' }, 'image: must provide image or rootfs'],
  ];
  for (const [spec, message] of errors) t.throws(() => gen({ command: ['x'], ...spec }), { message, status: 400 }, String(message));
  t.equal(gen({ command: ['x'], apparmor_profile: 'unconfined' }).process.apparmorProfile, undefined);
  t.equal(gen({ command: ['x'], apparmor_profile: 'p' }, image, { apparmorEnabled: true }).process.apparmorProfile, 'p');
});
