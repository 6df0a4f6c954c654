import t, { type Test } from 'tap';
import { collect, leakCheckedTest, makeTestEnv, waitNoConmon, type TestEnv } from './helpers.js';

let env: TestEnv;
t.before(() => {
  env = makeTestEnv();
});
t.teardown(async () => {
  await env.cleanup();
});
const ctest = (name: string, fn: (t: Test) => Promise<void>): void => leakCheckedTest(t, () => env, name, fn);

ctest('TTY: resize while created, raw output on one pipe', async (t) => {
  const spec = env.newContainer({ args: ['sh', '-c', 'echo out; echo err >&2; stty size'], terminal: true });
  await env.runtime.createContainer(spec);
  await env.runtime.attachResize(spec.bundleDir, 30, 100);
  const conn = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn);
  await env.runtime.startContainer(spec.id);
  const got = await output;
  t.ok(got.packets.every((p) => p.pipe === 2), 'a terminal has a single stream');
  t.equal(got.stdout, 'out\r\nerr\r\n30 100\r\n', 'raw terminal output (onlcr), height then width');
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000))?.exitCode, 0);
  await env.runtime.deleteContainer(spec.id);
});

ctest('TTY: resize while running, stdin through the terminal', async (t) => {
  const spec = env.newContainer({ args: ['sh', '-c', 'stty -echo; echo ready; read line; stty size; echo "[$line]"'], terminal: true });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  await env.runtime.startContainer(spec.id);
  let seen = '';
  for await (const p of conn.packets) {
    seen += (p as { data: Buffer }).data.toString();
    if (seen.includes('ready')) break;
  }
  // Breaking out of for-await destroyed the packet stream; attach again for the rest.
  const conn2 = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn2);
  await env.runtime.attachResize(spec.bundleDir, 41, 132);
  await new Promise((r) => setTimeout(r, 100));
  await conn2.write(Buffer.from('typed\r'));
  const got = await output;
  t.match(got.stdout, /41 132\r\n\[typed\]\r\n/, 'new size and the typed line');
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000))?.exitCode, 0);
  t.ok(conn.closed, 'first connection closed');
  await env.runtime.deleteContainer(spec.id);
});

ctest('resize of a container whose conmon is gone fails quickly', async (t) => {
  const spec = env.newContainer({ args: ['true'], terminal: true });
  await env.runtime.createContainer(spec);
  await env.runtime.startContainer(spec.id);
  await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000);
  t.same(await waitNoConmon(env.dir), [], 'conmon exited');
  const started = Date.now();
  const err = await env.runtime.attachResize(spec.bundleDir, 10, 10).then(() => null, (e: unknown) => e);
  t.match(err, { status: 500, message: /ctl/ }, `resize refused: ${String(err)}`);
  t.ok(Date.now() - started < 3000, 'bounded retry');
  await env.runtime.deleteContainer(spec.id);
});
