/**
 * The systemd units: systemd/install.sh installs them with the command they name, `systemd-analyze verify`
 * accepts them, and the ExecStart line read from each service unit, run the way systemd runs it (socket passed
 * as fd 3, NOTIFY_SOCKET set), serves the API and reports READY=1, then STOPPING=1 on SIGTERM.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DgramSocket } from 'node-unix-socket';
import { request } from '../../helpers/daemon.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const UNITS = join(REPO, 'systemd');

type Unit = Map<string, Map<string, string[]>>;

/** Sections and keys of a unit file (a key may repeat); comments and blank lines skipped. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 0) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    section.set(key, [...(section.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

t.test('install.sh installs a podserve command and the units', async (t) => {
  const dest = mkdtempSync('/tmp/psu-');
  t.teardown(() => rmSync(dest, { recursive: true, force: true }));
  const res = await run('bash', [join(UNITS, 'install.sh')], { ...process.env, DESTDIR: dest });
  t.equal(res.code, 0, 'install.sh succeeds', { stderr: res.stderr });
  for (const f of ['system/podserve.socket', 'system/podserve.service', 'user/podserve.socket', 'user/podserve.service']) {
    t.ok(existsSync(join(dest, 'etc/systemd', f)), f);
  }
  const version = await run(join(dest, 'usr/local/bin/podserve'), ['--version']);
  t.equal(version.code, 0);
  t.match(version.stdout, /^podserve version /);
});

t.test('the units carry the decisions they document', async (t) => {
  const socket = parseUnit(readFileSync(join(UNITS, 'podserve.socket'), 'utf8'));
  t.equal(value(socket, 'Socket', 'ListenStream'), '/run/podserve/podserve.sock');
  t.equal(value(socket, 'Socket', 'SocketMode'), '0660');
  t.ok(value(socket, 'Socket', 'SocketGroup'), 'group set (and changeable by a drop-in)');
  const userSocket = parseUnit(readFileSync(join(UNITS, 'user/podserve.socket'), 'utf8'));
  t.equal(value(userSocket, 'Socket', 'ListenStream'), '%t/podserve/podserve.sock');
  for (const file of ['podserve.service', 'user/podserve.service']) {
    const service = parseUnit(readFileSync(join(UNITS, file), 'utf8'));
    t.equal(value(service, 'Service', 'Type'), 'notify', `${file}: Type=notify`);
    t.equal(value(service, 'Service', 'KillMode'), 'process', `${file}: containers survive a stop`);
    t.equal(value(service, 'Service', 'Delegate'), 'yes', `${file}: Delegate`);
    t.equal(value(service, 'Unit', 'Requires'), 'podserve.socket');
    for (const key of ['PrivateTmp', 'ProtectSystem', 'SystemCallFilter', 'NoNewPrivileges', 'PrivateDevices']) {
      t.notOk(service.get('Service')?.has(key), `${file}: no ${key} (would break conmon/runc, see the unit's comments)`);
    }
  }
});

/** A copy of the units whose command is the given wrapper, since systemd-analyze checks that it exists. */
function unitCopy(dir: string, files: string[], command: string): string[] {
  mkdirSync(dir, { recursive: true });
  return files.map((f) => {
    const target = join(dir, f.split('/').at(-1)!);
    writeFileSync(target, readFileSync(join(UNITS, f), 'utf8').replaceAll('/usr/local/bin/podserve', command));
    return target;
  });
}

t.test('systemd-analyze verify accepts the system and the user units', async (t) => {
  const dir = mkdtempSync('/tmp/psu-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const res0 = await run('bash', [join(UNITS, 'install.sh')], { ...process.env, DESTDIR: dir });
  t.equal(res0.code, 0);
  const command = join(dir, 'usr/local/bin/podserve');

  const system = unitCopy(join(dir, 'system'), ['podserve.socket', 'podserve.service'], command);
  const sys = await run('systemd-analyze', ['verify', '--man=no', ...system]);
  t.equal(sys.code, 0, 'system units verify');
  t.equal(sys.stderr.trim(), '', 'no warnings for the system units');

  const runtimeDir = join(dir, 'rt');
  mkdirSync(runtimeDir, { mode: 0o700 });
  const user = unitCopy(join(dir, 'user'), ['user/podserve.socket', 'user/podserve.service'], command);
  const usr = await run('systemd-analyze', ['--user', 'verify', '--man=no', ...user], { ...process.env, XDG_RUNTIME_DIR: runtimeDir });
  t.equal(usr.code, 0, 'user units verify');
  t.equal(usr.stderr.trim(), '', 'no warnings for the user units');

  // And a broken unit is caught, so the check above means something.
  const broken = join(dir, 'system', 'podserve.service');
  writeFileSync(broken, readFileSync(broken, 'utf8').replace('Type=notify', 'Type=notifyy'));
  const bad = await run('systemd-analyze', ['verify', '--man=no', ...system]);
  t.match(bad.stderr, /notifyy/, 'a typo is reported');
});

for (const flavour of ['system', 'user'] as const) {
  t.test(`the ${flavour} unit's ExecStart, run as systemd runs it, serves and notifies`, async (t) => {
    const dir = mkdtempSync('/tmp/psu-');
    const notifySocket = join(dir, 'notify');
    const receiver = new DgramSocket();
    const messages: string[] = [];
    receiver.on('data', (buf: Buffer) => messages.push(buf.toString()));
    receiver.bind(notifySocket);
    t.teardown(() => {
      receiver.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const res0 = await run('bash', [join(UNITS, 'install.sh')], { ...process.env, DESTDIR: dir });
    t.equal(res0.code, 0);
    const command = join(dir, 'usr/local/bin/podserve');

    const file = flavour === 'system' ? 'podserve.service' : 'user/podserve.service';
    const execStart = value(parseUnit(readFileSync(join(UNITS, file), 'utf8')), 'Service', 'ExecStart');
    t.ok(execStart, 'ExecStart present');
    let argv = execStart!.split(/\s+/);
    t.equal(argv[0], '/usr/local/bin/podserve', 'runs the installed command');
    if (flavour === 'system') {
      // The system unit uses the default state dirs; keep this test out of /var/lib/podserve and /run/podserve.
      argv = [command, '--root', join(dir, 'root'), '--runroot', join(dir, 'run'), ...argv.slice(1)];
    } else {
      argv = [command, ...argv.slice(1)].map((a) => a.replaceAll('%h', join(dir, 'home')).replaceAll('%t', join(dir, 'rt')));
    }
    const sock = join(dir, 'p.sock');
    // systemd-socket-activate passes only PATH, HOME, TERM, LISTEN_* and what -E names.
    const proc = spawn('systemd-socket-activate', ['-l', sock, '--fdname=podserve.socket', '-E', `NOTIFY_SOCKET=${notifySocket}`, ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    proc.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      proc.kill('SIGKILL');
    });
    const deadline = Date.now() + 20_000;
    while (!existsSync(sock) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));

    const ping = await request(sock, 'GET', '/_ping', undefined, { Connection: 'close' });
    t.equal(ping.status, 200, 'serves on the socket systemd passed');
    while (messages.length < 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    t.match(messages[0], /^READY=1\nSTATUS=Serving the API on .*passed by systemd/, 'READY=1 with a status line');

    proc.kill('SIGTERM');
    t.equal(await exited, 0, 'exits 0 on SIGTERM', { stderr });
    while (messages.length < 2 && Date.now() < deadline + 5000) await new Promise((r) => setTimeout(r, 20));
    t.match(messages[1], /^STOPPING=1\nSTATUS=Stopping: SIGTERM/, 'STOPPING=1 on shutdown');
    if (flavour === 'user') t.ok(existsSync(join(dir, 'home/.local/share/podserve')), 'state under the home directory');
  });
}
