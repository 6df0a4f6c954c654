import t, { type Test } from 'tap';
import { collect, leakCheckedTest, makeTestEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
t.before(() => {
  env = makeTestEnv();
});
t.teardown(async () => {
  await env.cleanup();
});
const ctest = (name: string, fn: (t: Test) => Promise<void>): void => leakCheckedTest(t, () => env, name, fn);

/** Create and start a container, returning once it printed its "ready" line (its traps are installed). */
async function startReady(script: string, hostPid = false): Promise<ReturnType<TestEnv['newContainer']>> {
  const spec = env.newContainer({ args: ['sh', '-c', script], hostPid });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  await env.runtime.startContainer(spec.id);
  for await (const packet of conn.packets) {
    if ((packet as { data: Buffer }).data.toString().includes('ready')) break;
  }
  conn.close();
  return spec;
}

ctest('kill with SIGKILL → 137, with SIGTERM → 143', async (t) => {
  const a = await startReady('echo ready; exec sleep 60');
  await env.runtime.killContainer(a.id, 9);
  t.equal((await env.runtime.waitExitFile(a.exitDir, a.id, 10_000))?.exitCode, 137);

  // A PID-namespace init ignores TERM without a handler; outside one it dies of it.
  const b = await startReady('echo ready; exec sleep 60', true);
  await env.runtime.killContainer(b.id, 15, true);
  t.equal((await env.runtime.waitExitFile(b.exitDir, b.id, 10_000))?.exitCode, 143, 'runc kill --all');

  const err = await env.runtime.killContainer(b.id, 9).then(() => null, (e: unknown) => e);
  t.match(err, { status: 409, causeText: 'container state improper' }, 'killing a stopped container is a conflict');
  await env.runtime.deleteContainer(a.id);
  await env.runtime.deleteContainer(b.id);
});

ctest('stop: a container that traps TERM exits by itself within the timeout', async (t) => {
  const spec = await startReady("trap 'echo bye; exit 3' TERM; echo ready; while :; do sleep 0.1; done");
  const started = Date.now();
  await env.runtime.stopContainer(spec.id, 10, 15, { exitDir: spec.exitDir });
  t.ok(Date.now() - started < 5000, 'returned as soon as it exited');
  t.equal((await env.runtime.readExitFile(spec.exitDir, spec.id))?.exitCode, 3, 'exit file already there when stop returns');
  t.equal((await env.runtime.state(spec.id))?.status, 'stopped');
  await env.runtime.deleteContainer(spec.id);
});

ctest('stop: a container ignoring TERM is killed after the timeout', async (t) => {
  const spec = await startReady("trap '' TERM; echo ready; while :; do sleep 0.1; done");
  const started = Date.now();
  await env.runtime.stopContainer(spec.id, 1, 15, { exitDir: spec.exitDir, all: true });
  const took = Date.now() - started;
  t.ok(took >= 1000 && took < 6000, `waited the timeout, then SIGKILL (${took} ms)`);
  t.equal((await env.runtime.readExitFile(spec.exitDir, spec.id))?.exitCode, 137);
  await env.runtime.stopContainer(spec.id, 1, 15, { exitDir: spec.exitDir });
  t.pass('stopping a stopped container is a no-op');
  await env.runtime.deleteContainer(spec.id);
});

ctest('stop without an exit dir falls back to watching the pid; timeout 0 kills at once', async (t) => {
  const spec = await startReady("trap '' TERM; echo ready; while :; do sleep 0.1; done");
  const started = Date.now();
  await env.runtime.stopContainer(spec.id, 0, 15);
  t.ok(Date.now() - started < 3000, 'no grace period');
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 5000))?.exitCode, 137);
  await env.runtime.deleteContainer(spec.id);
});

ctest('stopping a paused container thaws it so it can handle the signal', async (t) => {
  const spec = await startReady("trap 'exit 3' TERM; echo ready; while :; do sleep 0.1; done");
  await env.runtime.pauseContainer(spec.id);
  await env.runtime.stopContainer(spec.id, 10, 15, { exitDir: spec.exitDir });
  t.equal((await env.runtime.readExitFile(spec.exitDir, spec.id))?.exitCode, 3);
  const frozen = await startReady('echo ready; exec sleep 60');
  await env.runtime.pauseContainer(frozen.id);
  await env.runtime.stopContainer(frozen.id, 0, 15, { exitDir: frozen.exitDir });
  t.equal((await env.runtime.readExitFile(frozen.exitDir, frozen.id))?.exitCode, 137, 'timeout 0 on a paused container');
  await env.runtime.deleteContainer(spec.id);
  await env.runtime.deleteContainer(frozen.id);
});

ctest('pause and unpause show in runc state; output resumes', async (t) => {
  const spec = env.newContainer({ args: ['sh', '-c', 'read line; echo got $line'], stdin: true });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn);
  await env.runtime.startContainer(spec.id);
  await env.runtime.pauseContainer(spec.id);
  t.equal((await env.runtime.state(spec.id))?.status, 'paused');
  await env.runtime.unpauseContainer(spec.id);
  t.equal((await env.runtime.state(spec.id))?.status, 'running');
  await conn.write(Buffer.from('it\n'));
  t.equal((await output).stdout, 'got it\n');
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000))?.exitCode, 0);
  await env.runtime.deleteContainer(spec.id);
});

ctest('updateResources applies a pids limit', async (t) => {
  const spec = await startReady('echo ready; exec sleep 60');
  await env.runtime.updateResources(spec.id, { pids: { limit: 42 } });
  const state = await env.runtime.state(spec.id);
  t.ok(state, 'running');
  const { readFileSync } = await import('node:fs');
  const cgroup = readFileSync(`/proc/${state?.pid}/cgroup`, 'utf8');
  const pidsPath = /:pids:(\S+)/.exec(cgroup)?.[1];
  t.ok(pidsPath, 'container has a pids cgroup');
  t.equal(readFileSync(`/sys/fs/cgroup/pids${pidsPath}/pids.max`, 'utf8').trim(), '42');
  const err = await env.runtime.updateResources('nope-not-there', { pids: { limit: 1 } }).then(() => null, (e: unknown) => e);
  t.match(err, { name: 'OciRuntimeError', causeText: /does not exist/ });
  await env.runtime.stopContainer(spec.id, 0, 9, { exitDir: spec.exitDir });
  await env.runtime.deleteContainer(spec.id);
});
