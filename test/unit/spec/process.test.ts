import t from 'tap';
import { generateExecProcess, type ExecContainerInfo } from '../../../src/spec/process.js';
import { generateOciConfig } from '../../../src/spec/oci.js';
import { ALL_CAPABILITIES, DEFAULT_CAPABILITIES } from '../../../src/spec/capabilities.js';

const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:App:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const group = 'root:x:0:\nwheel:x:10:root,app\napp:x:1000:\n';
const base = {
  id: 'c'.repeat(64), rootfsPath: '/r', passwd, group,
  hostLimits: { nofile: { soft: 1024, hard: 2048 }, nproc: { soft: 512, hard: 512 } },
};
const rootCtr = generateOciConfig({ image: 'i', command: ['sleep', '100'], env: { CTR: '1' }, work_dir: '/srv', cap_add: ['NET_ADMIN'], no_new_privileges: true }, { Env: ['PATH=/bin'] }, base);
const appCtr = generateOciConfig({ image: 'i', command: ['sleep', '100'], user: 'app', groups: ['wheel'], cap_add: ['NET_BIND_SERVICE'] }, {}, base);
const info = (proc: typeof rootCtr.process, user: string, groups?: string[]): ExecContainerInfo => ({ process: proc, user, groups, passwd, group });

t.test('inherits the container process', async (t) => {
  const p = generateExecProcess(info(rootCtr.process, ''), { cmd: ['ls', '-l'], tty: false, env: { X: '1', CTR: 'override' } });
  t.strictSame(p.args, ['ls', '-l']);
  t.equal(p.terminal, false);
  t.equal(p.cwd, '/srv');
  t.strictSame(p.rlimits, rootCtr.process.rlimits);
  t.equal(p.noNewPrivileges, true);
  t.strictSame(p.user, rootCtr.process.user, 'root container, no exec user: same user');
  t.ok(p.env.includes('X=1'));
  t.ok(p.env.includes('CTR=override'), 'session env overrides');
  t.equal(p.env.filter((e) => e.startsWith('CTR=')).length, 1, 'no duplicates');
  t.ok(p.env.includes('HOME=/root'));
  const caps = [...DEFAULT_CAPABILITIES, 'CAP_NET_ADMIN'].sort();
  t.strictSame(p.capabilities, { bounding: caps, effective: caps, inheritable: [], permitted: caps, ambient: [] });
  t.strictSame(rootCtr.process.args, ['sleep', '100'], 'the container spec is not modified');
});

t.test('session options', async (t) => {
  const p = generateExecProcess(info(rootCtr.process, ''), { cmd: ['sh'], tty: true, workingDir: '/tmp', consoleSize: { height: 24, width: 80 } });
  t.equal(p.terminal, true);
  t.equal(p.cwd, '/tmp');
  t.strictSame(p.consoleSize, { height: 24, width: 80 });
  t.notOk('consoleSize' in generateExecProcess(info(rootCtr.process, ''), { cmd: ['sh'], tty: false, consoleSize: { height: 1, width: 1 } }));
  t.throws(() => generateExecProcess(info(rootCtr.process, ''), { cmd: [], tty: false }), { message: /non-empty command/, status: 400 });
  t.throws(() => generateExecProcess(info(rootCtr.process, ''), { cmd: ['x'], tty: false, workingDir: 'rel' }), { message: 'WorkingDir: "rel" must be an absolute path' });
  t.throws(() => generateExecProcess(info(rootCtr.process, ''), { cmd: ['x'], tty: false, user: 'ghost' }), { message: 'User: unable to find user ghost: no matching entries in passwd file' });
});

t.test('users and capabilities (podman rules)', async (t) => {
  // Another user in a root container keeps the container's capability sets (podman 4.3.1 behaviour).
  const nobody = generateExecProcess(info(rootCtr.process, ''), { cmd: ['id'], tty: false, user: 'nobody' });
  t.strictSame(nobody.user, { uid: 65534, gid: 65534, umask: 18 });
  t.strictSame(nobody.capabilities.effective, rootCtr.process.capabilities.effective);
  t.strictSame(nobody.capabilities.inheritable, []);
  t.ok(nobody.env.includes('HOME=/root'), 'HOME comes from the container env when already set');

  // Root in an app container: full bounding set as effective.
  const asRoot = generateExecProcess(info(appCtr.process, 'app', ['wheel']), { cmd: ['id'], tty: false, user: 'root' });
  t.equal(asRoot.user.uid, 0);
  t.strictSame(asRoot.capabilities.effective, appCtr.process.capabilities.bounding);
  t.strictSame(asRoot.capabilities.permitted, appCtr.process.capabilities.bounding);

  // Same user as the container: the container's effective set everywhere, groups inherited.
  const same = generateExecProcess(info(appCtr.process, 'app', ['wheel']), { cmd: ['id'], tty: false });
  t.strictSame(same.user, { uid: 1000, gid: 1000, umask: 18, additionalGids: [10] });
  t.strictSame(same.capabilities.effective, ['CAP_NET_BIND_SERVICE']);
  t.strictSame(same.capabilities.ambient, ['CAP_NET_BIND_SERVICE']);
  t.strictSame(same.capabilities.inheritable, ['CAP_NET_BIND_SERVICE']);

  // Privileged session: the daemon's whole bounding set.
  const priv = generateExecProcess({ ...info(rootCtr.process, ''), boundingCaps: ALL_CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE') }, { cmd: ['x'], tty: false, privileged: true });
  t.equal(priv.capabilities.bounding.length, ALL_CAPABILITIES.length - 1);
  t.strictSame(priv.capabilities.effective, priv.capabilities.bounding);
});
