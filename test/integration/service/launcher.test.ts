/**
 * The launcher (src/launch.cts) on a private copy of the build: the first daemon writes the V8 code cache once it
 * has run a while, the next one starts from it (and does not write it again), and code that loads a package on
 * demand still works from cached code (the systemd notification loads node-unix-socket).
 */
import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import unixSocket from 'node-unix-socket';
import { request } from '../../helpers/daemon.js';

const { DgramSocket } = unixSocket;
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A package directory holding only the launcher, the bundle and links to what they load at run time. */
function privateBuild(dir: string): string {
  const pkg = join(dir, 'pkg');
  mkdirSync(join(pkg, 'dist/src'), { recursive: true });
  mkdirSync(join(pkg, 'dist/bundle'), { recursive: true });
  copyFileSync(join(REPO, 'dist/src/launch.cjs'), join(pkg, 'dist/src/launch.cjs'));
  copyFileSync(join(REPO, 'dist/bundle/podserve.cjs'), join(pkg, 'dist/bundle/podserve.cjs'));
  writeFileSync(join(pkg, 'package.json'), readFileSync(join(REPO, 'package.json')));
  symlinkSync(join(REPO, 'node_modules'), join(pkg, 'node_modules'));
  symlinkSync(join(REPO, 'build'), join(pkg, 'build'));
  return pkg;
}

interface Started {
  socket: string;
  messages: string[];
  stop: () => Promise<number | null>;
}

async function start(pkg: string, dir: string, name: string): Promise<Started> {
  const socket = join(dir, `${name}.sock`);
  const notifySocket = join(dir, `${name}.notify`);
  const receiver = new DgramSocket();
  const messages: string[] = [];
  receiver.on('data', (buf: Buffer) => messages.push(buf.toString()));
  receiver.bind(notifySocket);
  const proc = spawn(
    process.execPath,
    [join(pkg, 'dist/src/launch.cjs'), '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), 'service', '--time', '0', `unix://${socket}`],
    { env: { ...process.env, NOTIFY_SOCKET: notifySocket }, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const deadline = Date.now() + 20_000;
  while (!messages.some((m) => m.startsWith('READY=1')) && Date.now() < deadline) await sleep(20);
  return {
    socket,
    messages,
    stop: async () => {
      proc.kill('SIGTERM');
      const code = await exited;
      receiver.close();
      return code;
    },
  };
}

t.test('the code cache is written by a first daemon and used by the next', async (t) => {
  const dir = mkdtempSync('/tmp/psl-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pkg = privateBuild(dir);
  const cache = join(pkg, 'dist/bundle/podserve.cjs.cache');

  const first = await start(pkg, dir, 'first');
  t.match(first.messages[0], /^READY=1\n/, 'without a cache: serves and notifies systemd');
  t.equal((await request(first.socket, 'GET', '/_ping')).text, 'OK');
  const deadline = Date.now() + 15_000;
  while (!existsSync(cache) && Date.now() < deadline) await sleep(100);
  t.ok(existsSync(cache), 'the cache is written after a few seconds');
  t.equal(await first.stop(), 0);
  const written = statSync(cache).mtimeMs;

  const second = await start(pkg, dir, 'second');
  t.match(second.messages[0], /^READY=1\n/, 'from the cache: the on-demand notification code still runs');
  t.equal((await request(second.socket, 'GET', '/_ping')).text, 'OK');
  const info = await request(second.socket, 'GET', '/v4.3.1/libpod/info');
  t.equal(info.status, 200, 'a route schema compiled on first use works from cached code');
  await sleep(4000);
  t.equal(statSync(cache).mtimeMs, written, 'an accepted cache is not written again');
  t.equal(await second.stop(), 0, 'exits 0 on SIGTERM');
  t.match(second.messages.at(-1), /^STOPPING=1\n/, 'and says so to systemd');
});
