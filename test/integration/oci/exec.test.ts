import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { collect, conmonPidsUnder, leakCheckedTest, makeConfig, makeTestEnv, type TestEnv } from './helpers.js';
import type { ContainerRunSpec } from '../../../src/oci/types.js';

let env: TestEnv;
let ctr: ContainerRunSpec;
let sessions = 0;

t.before(async () => {
  env = makeTestEnv();
  ctr = env.newContainer({ args: ['sleep', '600'] });
  await env.runtime.createContainer(ctr);
  await env.runtime.startContainer(ctr.id);
});
t.teardown(async () => {
  await env.runtime.stopContainer(ctr.id, 0, 9, { exitDir: ctr.exitDir }).catch(() => undefined);
  await env.runtime.deleteContainer(ctr.id).catch(() => undefined);
  await env.cleanup();
});

/** Exec sessions must not leave their own conmon behind (the container's stays). */
function etest(name: string, fn: (t: Test) => Promise<void>): void {
  leakCheckedTest(t, () => ({ ...env, dir: join(env.dir, 'exec') }), name, fn);
}

function process(args: string[]): Record<string, unknown> {
  return makeConfig(env.rootfs, { args }).process as Record<string, unknown>;
}

function sessionDir(): string {
  sessions += 1;
  return join(env.dir, 'exec', `s${sessions}`);
}

etest('exec with attach: stdout, stderr, exit code 3', async (t) => {
  const bundleDir = sessionDir();
  let preStartSawConn = false;
  const { pid, attach } = await env.runtime.execContainer(
    { id: ctr.id, name: ctr.name },
    {
      sessionId: 'sess1',
      bundleDir,
      process: process(['sh', '-c', 'echo out; echo err >&2; exit 3']),
      terminal: false,
      attachStdin: false,
      preStart: async (conn) => {
        preStartSawConn = conn !== null;
      },
    },
  );
  t.ok(pid > 0, 'exec pid');
  t.ok(preStartSawConn, 'preStart got the connection');
  t.ok(attach, 'attached');
  const got = await collect(attach!);
  t.equal(got.stdout, 'out\n');
  t.equal(got.stderr, 'err\n');
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 3);
});

etest('exec -i: stdin to cat, closeWrite ends it', async (t) => {
  const bundleDir = sessionDir();
  const { attach } = await env.runtime.execContainer(
    { id: ctr.id },
    { sessionId: 'sess2', bundleDir, process: process(['cat']), terminal: false, attachStdin: true },
  );
  const output = collect(attach!);
  await attach!.write(Buffer.from('to cat\n'));
  await attach!.closeWrite();
  t.equal((await output).stdout, 'to cat\n');
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 0);
});

etest('exec with a TTY: consoleSize is there from the start, execResize changes it', async (t) => {
  const bundleDir = sessionDir();
  const { attach } = await env.runtime.execContainer(
    { id: ctr.id },
    {
      sessionId: 'sess3',
      bundleDir,
      process: process(['sh', '-c', 'stty size; stty -echo; echo err >&2; read x; stty size']),
      terminal: true,
      consoleSize: { height: 25, width: 90 },
      attachStdin: true,
    },
  );
  let seen = '';
  attach!.packets.on('data', (p: { pipe: number; data: Buffer }) => {
    t.equal(p.pipe, 2, 'single stream');
    seen += p.data.toString();
  });
  const ended = new Promise((resolve) => attach!.packets.once('end', resolve));
  while (!seen.includes('err')) await new Promise((r) => setTimeout(r, 10));
  await env.runtime.execResize(bundleDir, 33, 111);
  await new Promise((r) => setTimeout(r, 100));
  await attach!.write(Buffer.from('\r'));
  await ended;
  t.equal(seen, '25 90\r\nerr\r\n33 111\r\n');
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 0);
});

etest('exec -it: stdin through the session\'s terminal', async (t) => {
  const bundleDir = sessionDir();
  const { attach } = await env.runtime.execContainer(
    { id: ctr.id },
    {
      sessionId: 'sess3b',
      bundleDir,
      process: process(['sh', '-c', 'stty -echo; read x; echo "[$x]"']),
      terminal: true,
      attachStdin: true,
    },
  );
  const output = collect(attach!);
  await new Promise((r) => setTimeout(r, 100));
  await attach!.write(Buffer.from('typed\r'));
  t.match((await output).stdout, /\[typed\]\r\n$/);
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 0);
});

etest('detached exec', async (t) => {
  const bundleDir = sessionDir();
  let preStartArg: unknown = 'unset';
  const { pid, attach } = await env.runtime.execContainer(
    { id: ctr.id },
    {
      sessionId: 'sess4',
      bundleDir,
      process: process(['sh', '-c', 'echo detached > /tmp/detached; exit 5']),
      terminal: false,
      attachStdin: false,
      detach: true,
      preStart: async (conn) => {
        preStartArg = conn;
      },
    },
  );
  t.ok(pid > 0);
  t.equal(attach, null);
  t.equal(preStartArg, null, 'preStart runs without a connection');
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 5);
  t.equal(readFileSync(join(env.rootfs, 'tmp', 'detached'), 'utf8'), 'detached\n');
});

etest('execStop terminates a running exec process', async (t) => {
  const bundleDir = sessionDir();
  const { pid } = await env.runtime.execContainer(
    { id: ctr.id },
    { sessionId: 'sess5', bundleDir, process: process(['sleep', '60']), terminal: false, attachStdin: false, detach: true },
  );
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 0), null, 'still running');
  await env.runtime.execStop(pid, 5);
  t.equal(await env.runtime.readExecExitCode(bundleDir, ctr.id, 5000), 143, 'SIGTERM');
  await env.runtime.execStop(pid, 5);
  t.pass('stopping again is a no-op');
});

etest('exec of a missing binary: OciRuntimeError, nothing left behind', async (t) => {
  const bundleDir = sessionDir();
  const err = await env.runtime
    .execContainer({ id: ctr.id }, { sessionId: 'sess6', bundleDir, process: process(['/no/such']), terminal: false, attachStdin: false })
    .then(() => null, (e: unknown) => e);
  t.match(err, { name: 'OciRuntimeError', kind: 'command-not-found', causeText: /no such file or directory/ });
  t.same(conmonPidsUnder(bundleDir), []);
});

etest('a failing preStart tears the session down before the process starts', async (t) => {
  const bundleDir = sessionDir();
  const err = await env.runtime
    .execContainer(
      { id: ctr.id },
      {
        sessionId: 'sess7',
        bundleDir,
        process: process(['sh', '-c', 'echo ran > /tmp/prestart-failed']),
        terminal: false,
        attachStdin: false,
        preStart: async () => {
          throw new Error('hijack failed');
        },
      },
    )
    .then(() => null, (e: unknown) => e);
  t.match(err, { message: 'hijack failed' });
  await new Promise((r) => setTimeout(r, 300));
  t.throws(() => readFileSync(join(env.rootfs, 'tmp', 'prestart-failed')), 'the process never ran');
});

t.test('the container survived all exec sessions', async (t) => {
  t.equal((await env.runtime.state(ctr.id))?.status, 'running');
  t.equal(conmonPidsUnder(ctr.bundleDir).length, 1, 'only the container\'s conmon');
});
