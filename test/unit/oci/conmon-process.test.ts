import t from 'tap';
import { pino } from 'pino';
import { ConmonProcess } from '../../../src/oci/conmon-process.js';
import { RuntimeError } from '../../../src/errors.js';

// /bin/sh stands in for conmon: it speaks the same pipe protocol on fds 3, 4 (and 5).
const logger = pino({ level: 'silent' });
const env: Record<string, string> = { PATH: '/usr/bin:/bin' };
const fake = (script: string, withAttachPipe = false): ConmonProcess =>
  new ConmonProcess('/bin/sh', ['-c', script], { env, cwd: '/', withAttachPipe, logger });

t.test('start byte, intermediate exit, one JSON line', async (t) => {
  const p = fake(`head -c1 <&4 >/dev/null; printf '{"data": %s, "message": "%s"}\\n' "$_OCI_SYNCPIPE$_OCI_STARTPIPE" "\${_OCI_ATTACHPIPE:-none}" >&3`);
  await p.writeStartByte();
  await p.waitIntermediate(5000);
  t.same(await p.readMessage(p.sync, 5000, 'sync'), { data: 34, message: 'none' });
  p.close();
});

t.test('exec protocol: attach pipe message, second start byte, then the pid', async (t) => {
  const p = fake(
    `head -c1 <&4 >/dev/null; ( echo '{"data": 0}' >&5; head -c1 <&4 >/dev/null; echo '{"data": 77}' >&3 ) & exit 0`,
    true,
  );
  await p.writeStartByte();
  await p.waitIntermediate(5000);
  t.same(await p.readMessage(p.attachPipe!, 5000, 'attach'), { data: 0 });
  await p.writeStartByte();
  t.same(await p.readMessage(p.sync, 5000, 'sync'), { data: 77 });
  p.close();
});

t.test('failures', async (t) => {
  const early = fake('echo "conmon: bad flag" >&2; exit 1');
  await early.writeStartByte().catch(() => undefined);
  const err = await early.waitIntermediate(5000).then(() => null, (e: unknown) => e);
  t.ok(err instanceof RuntimeError);
  t.match(err, { message: /conmon failed: exit status 1: conmon: bad flag/, causeText: 'conmon: bad flag' });
  early.close();

  const silent = fake('head -c1 <&4 >/dev/null; exit 0');
  await silent.writeStartByte();
  await silent.waitIntermediate(5000);
  await t.rejects(silent.readMessage(silent.sync, 5000, 'sync'), { message: /exited without reporting \(sync\)/ });
  silent.close();

  const slow = fake('head -c1 <&4 >/dev/null; sleep 2 & exit 0');
  await slow.writeStartByte();
  await slow.waitIntermediate(5000);
  await t.rejects(slow.readMessage(slow.sync, 50, 'sync'), { message: /timed out waiting for conmon/ });
  slow.close();

  const garbled = fake(`head -c1 <&4 >/dev/null; echo 'not json' >&3`);
  await garbled.writeStartByte();
  await garbled.waitIntermediate(5000);
  await t.rejects(garbled.readMessage(garbled.sync, 5000, 'sync'), { message: /invalid message from conmon/ });
  garbled.close();

  const missing = new ConmonProcess('/no/such/conmon', [], { env, cwd: '/', withAttachPipe: false, logger });
  await t.rejects(missing.waitIntermediate(5000), { message: /conmon failed/ });
  missing.close();
});
