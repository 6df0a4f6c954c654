import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { collect, conmonPidsUnder, leakCheckedTest, makeTestEnv, type TestEnv } from './helpers.js';

let env: TestEnv;
t.before(() => {
  env = makeTestEnv();
});
t.teardown(async () => {
  await env.cleanup();
});
const ctest = (name: string, fn: (t: Test) => Promise<void>): void => leakCheckedTest(t, () => env, name, fn);

ctest('create → created → attach before start sees first output → start → exit file', async (t) => {
  const spec = env.newContainer({ args: ['sh', '-c', 'echo hello; echo oops >&2; exit 7'] });
  const created = await env.runtime.createContainer(spec);
  t.ok(created.pid > 0, 'container pid');
  t.ok(await env.runtime.conmonAlive(created.conmonPid), 'conmon alive');

  const state = await env.runtime.state(spec.id);
  t.equal(state?.status, 'created');
  t.equal(state?.pid, created.pid);

  const conn = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn);
  await env.runtime.startContainer(spec.id);
  const got = await output;
  t.equal(got.stdout, 'hello\n', 'stdout on pipe 2');
  t.equal(got.stderr, 'oops\n', 'stderr on pipe 3');
  t.ok(got.packets.every((p) => p.pipe === 2 || p.pipe === 3), 'only stdout/stderr pipe ids');

  const exit = await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000);
  t.equal(exit?.exitCode, 7, 'exit code from exit file');
  t.ok(exit && Math.abs(exit.finishedAt.getTime() - Date.now()) < 60_000, 'finishedAt is recent');
  t.same(await env.runtime.readExitFile(spec.exitDir, spec.id), exit);

  const log = readFileSync(spec.logPath, 'utf8');
  t.match(log, /^\S+ stdout F hello$/m, 'k8s-file log line for stdout');
  t.match(log, /^\S+ stderr F oops$/m, 'k8s-file log line for stderr');

  t.equal((await env.runtime.state(spec.id))?.status, 'stopped');
  await env.runtime.deleteContainer(spec.id);
  t.equal(await env.runtime.state(spec.id), null, 'runc forgot it');
  await env.runtime.deleteContainer(spec.id);
  t.pass('deleting twice is fine');
});

ctest('stdin through attach, closeWrite ends cat (-i)', async (t) => {
  const spec = env.newContainer({ args: ['cat'], stdin: true });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn);
  await env.runtime.startContainer(spec.id);
  await conn.write(Buffer.from('line one\n'));
  // A write bigger than one SEQPACKET message conmon reads (32767 bytes) must arrive intact.
  const big = Buffer.alloc(100_000, 'x');
  await conn.write(big);
  await conn.write(Buffer.from('\nthe end\n'));
  await conn.closeWrite();
  const got = await output;
  t.equal(got.stdout, `line one\n${big.toString()}\nthe end\n`, 'cat echoed everything');
  const exit = await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000);
  t.equal(exit?.exitCode, 0, 'cat exited after stdin EOF');
  await env.runtime.deleteContainer(spec.id);
});

ctest('a runtime failure is a RuntimeError with runc\'s message and leaves nothing behind', async (t) => {
  const spec = env.newContainer({
    args: ['true'],
    rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1_048_576, soft: 1_048_576 }],
  });
  const err = await env.runtime.createContainer(spec).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err, 'create failed');
  const e = err as { name: string; status: number; causeText: string; message: string; kind?: string };
  t.equal(e.name, 'OciRuntimeError');
  t.equal(e.status, 500);
  t.match(e.causeText, /rlimit/i, 'cause carries runc\'s message');
  t.match(e.message, /^runc: .*: OCI permission denied$/, 'message reads like Podman\'s');
  t.equal(e.kind, 'permission-denied');
  t.equal(await env.runtime.state(spec.id), null, 'no runc state left');
  t.same(conmonPidsUnder(spec.bundleDir), [], 'no conmon left');

  const bad = env.newContainer({ args: ['/no/such/binary'] });
  const err2 = (await env.runtime.createContainer(bad).then(
    () => null,
    (e: unknown) => e,
  )) as { causeText: string; kind: string } | null;
  t.ok(err2, 'create with a missing binary failed');
  t.match(err2?.causeText ?? '', /no such file or directory/);
  t.equal(err2?.kind, 'command-not-found');
  t.equal(await env.runtime.state(bad.id), null, 'no runc state left');
});

ctest('log driver none writes no log file', async (t) => {
  const spec = env.newContainer({ args: ['echo', 'quiet'], logDriver: 'none' });
  await env.runtime.createContainer(spec);
  await env.runtime.startContainer(spec.id);
  const exit = await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000);
  t.equal(exit?.exitCode, 0);
  t.notOk(existsSync(spec.logPath), 'no k8s-file log');
  await env.runtime.deleteContainer(spec.id);
});

ctest('conmon packets: pipe ids consistent, no pipe byte left in the data, large output intact', async (t) => {
  const script = 'i=0; while [ $i -lt 300 ]; do echo o$i; echo e$i >&2; i=$((i+1)); done; head -c 3000000 /dev/zero | tr "\\0" "z"';
  const spec = env.newContainer({ args: ['sh', '-c', script] });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  const output = collect(conn);
  await env.runtime.startContainer(spec.id);
  const got = await output;
  let expectedOut = '';
  let expectedErr = '';
  for (let i = 0; i < 300; i++) {
    expectedOut += `o${i}\n`;
    expectedErr += `e${i}\n`;
  }
  t.equal(got.stderr, expectedErr, 'stderr complete and in order');
  t.equal(got.stdout, expectedOut + 'z'.repeat(3_000_000), 'stdout complete and in order');
  t.ok(got.packets.every((p) => p.data.length > 0), 'no empty packet');
  t.ok(
    got.packets.every((p) => !p.data.includes(2) && !p.data.includes(3)),
    'no pipe-id byte inside data: packets joined into one run lost their pipe bytes',
  );
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000))?.exitCode, 0);
  await env.runtime.deleteContainer(spec.id);
});

t.test('runtime and conmon info, cached', async (t) => {
  const info = await env.runtime.runtimeInfo();
  t.match(info, { name: 'runc', path: '/usr/sbin/runc', version: /^1\.1\./, spec: /^1\.0\./ });
  t.ok(info.commit.length > 0, 'commit');
  t.match(info.versionOutput, /^runc version /);
  t.match(info.package, /^runc_1\.1\.5/);
  t.equal(env.runtime.runtimeInfo(), env.runtime.runtimeInfo(), 'the lookup is cached');
  const conmon = await env.runtime.conmonInfo();
  t.match(conmon, { path: '/usr/bin/conmon', version: /^conmon version 2\.1\.\d+, commit: /, package: /^conmon_2\.1\./ });
  t.equal(env.runtime.conmonInfo(), env.runtime.conmonInfo());
});

ctest('a conmon that cannot run is a RuntimeError, nothing left behind', async (t) => {
  const { ConmonRuntime } = await import('../../../src/oci/conmon.js');
  const { pino } = await import('pino');
  const broken = new ConmonRuntime({
    runtimePath: '/usr/sbin/runc',
    runtimeName: 'runc',
    conmonPath: '/no/such/conmon',
    runRoot: env.dir,
    logger: pino({ level: 'silent' }),
    runtimeFlags: ['--root', env.runcRoot],
  });
  const spec = env.newContainer({ args: ['true'] });
  const err = await broken.createContainer(spec).then(() => null, (e: unknown) => e);
  t.match(err, { name: 'RuntimeError', status: 500, message: /conmon failed: .*ENOENT/ });
  t.equal(await env.runtime.state(spec.id), null);
});

ctest('stdin backpressure: writes wait while the container does not read; close() rejects them', async (t) => {
  const spec = env.newContainer({ args: ['sleep', '60'], stdin: true });
  await env.runtime.createContainer(spec);
  await env.runtime.startContainer(spec.id);
  const conn = await env.runtime.attach(spec.bundleDir);
  const chunk = Buffer.alloc(32 * 1024, 'q');
  let settled = 0;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) writes.push(conn.write(chunk).finally(() => (settled += 1)));
  await new Promise((r) => setTimeout(r, 300));
  t.ok(settled < 64, `only ${settled} of 64 writes (2 MiB) were taken: conmon stopped reading`);
  conn.close();
  const results = await Promise.allSettled(writes);
  t.ok(results.some((r) => r.status === 'rejected'), 'the blocked writes were rejected, not left hanging');
  await env.runtime.stopContainer(spec.id, 0, 9, { exitDir: spec.exitDir });
  t.equal((await env.runtime.readExitFile(spec.exitDir, spec.id))?.exitCode, 137);
  await env.runtime.deleteContainer(spec.id);
});

ctest('conmon runs the exit command with its arguments after the exit file', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { join } = await import('node:path');
  const marker = join(env.dir, 'exit-command-ran');
  const spec = env.newContainer({ args: ['sh', '-c', 'exit 4'] });
  spec.exitCommand = ['/bin/sh', '-c', `cat "$1/$2" > ${marker}.tmp; echo " $2 $3" >> ${marker}.tmp; mv ${marker}.tmp ${marker}`, 'sh', spec.exitDir, spec.id, 'a b'];
  await env.runtime.createContainer(spec);
  await env.runtime.startContainer(spec.id);
  let content: string | undefined;
  for (let i = 0; i < 100 && content === undefined; i++) {
    content = await readFile(marker, 'utf8').catch(() => undefined);
    if (content === undefined) await new Promise((r) => setTimeout(r, 50));
  }
  t.equal(content, `4 ${spec.id} a b\n`, 'exit command saw the exit file and its arguments');
  await env.runtime.deleteContainer(spec.id);
});

ctest('output backpressure: a consumer that stops reading holds the container back', async (t) => {
  const spec = env.newContainer({ args: ['sh', '-c', 'head -c 8000000 /dev/zero | tr "\\0" "a"; echo done >&2'], logDriver: 'none' });
  await env.runtime.createContainer(spec);
  const conn = await env.runtime.attach(spec.bundleDir);
  await env.runtime.startContainer(spec.id);
  await new Promise((r) => setTimeout(r, 500));
  t.equal((await env.runtime.state(spec.id))?.status, 'running', 'still writing: conmon blocks on the unread socket');
  t.equal(await env.runtime.readExitFile(spec.exitDir, spec.id), null, 'not exited');
  const got = await collect(conn);
  t.equal(got.stdout.length, 8_000_000, 'all output once read');
  t.equal(got.stderr, 'done\n');
  t.equal((await env.runtime.waitExitFile(spec.exitDir, spec.id, 10_000))?.exitCode, 0);
  await env.runtime.deleteContainer(spec.id);
});
