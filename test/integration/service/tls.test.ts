/**
 * Remote access the way Docker does it: TCP with TLS and client certificates. Clients with a certificate signed by
 * the CA are served (curl, Node, the docker CLI); clients without one, or with a stranger's, are refused during the
 * handshake, before any request is read; plain TCP beyond loopback is refused at start.
 */
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../../helpers/daemon.js';

function run(cmd: string, args: string[], opts: { cwd?: string; timeout?: number } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: opts.cwd, timeout: opts.timeout ?? 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

async function openssl(dir: string, args: string[]): Promise<void> {
  const res = await run('openssl', args, { cwd: dir });
  if (res.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${res.stderr}`);
}

/** A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger's CA and client. */
async function makeCertificates(dir: string): Promise<void> {
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  writeFileSync(join(dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const ca of ['ca', 'stranger-ca']) {
    await openssl(dir, ['req', '-x509', ...key, '-days', '2', '-subj', `/CN=podserve test ${ca}`, '-keyout', `${ca}.key`, '-out', `${ca}.pem`]);
  }
  const issue = async (name: string, ca: string, ext: string): Promise<void> => {
    await openssl(dir, ['req', ...key, '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    await openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', `${name}.pem`]);
  };
  await issue('server', 'ca', 'server.ext');
  await issue('client', 'ca', 'client.ext');
  await issue('stranger', 'stranger-ca', 'client.ext');
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

t.test('TLS with client certificates', async (t) => {
  const dir = mkdtempSync('/tmp/pst-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await makeCertificates(dir);
  const port = await freePort();
  const f = (name: string): string => join(dir, name);
  const daemon = spawn(
    process.execPath,
    [CLI, '--root', f('root'), '--runroot', f('run'), '--log-level', 'debug', 'service', '--time', '0',
      '--tls-cert', f('server.pem'), '--tls-key', f('server.key'), '--tls-ca', f('ca.pem'), `tcp://127.0.0.1:${port}`],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  daemon.stderr.on('data', (c: Buffer) => (log += c.toString()));
  t.teardown(() => {
    daemon.kill('SIGKILL');
  });
  const url = `https://127.0.0.1:${port}`;
  const curl = (...args: string[]) => run('curl', ['-sS', '--max-time', '10', '--cacert', f('ca.pem'), ...args]);

  // Wait until it serves (an authenticated client).
  const deadline = Date.now() + 10_000;
  let ok = await curl('--cert', f('client.pem'), '--key', f('client.key'), `${url}/_ping`);
  while (ok.code !== 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    ok = await curl('--cert', f('client.pem'), '--key', f('client.key'), `${url}/_ping`);
  }
  t.equal(ok.code, 0, 'a client with a certificate signed by the CA is served', { stderr: ok.stderr });
  t.equal(ok.stdout, 'OK');
  t.notMatch(log, /over plain TCP/, 'no plain-TCP warning when TLS protects the port');

  const info = await curl('--cert', f('client.pem'), '--key', f('client.key'), `${url}/v4.3.1/libpod/info`);
  t.equal(info.code, 0);
  t.ok(JSON.parse(info.stdout).host, 'libpod info over TLS');

  // Node's https client with the same credentials: headers as on the unix socket.
  const res = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
    const req = httpsRequest(`${url}/_ping`, {
      ca: readFileSync(f('ca.pem')),
      cert: readFileSync(f('client.pem')),
      key: readFileSync(f('client.key')),
    }, (r) => {
      r.resume();
      r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers }));
    });
    req.on('error', reject);
    req.end();
  });
  t.equal(res.status, 200);
  t.equal(res.headers['libpod-api-version'], '4.3.1');

  // The docker CLI the way Docker's own TLS setup is used.
  const docker = await run('docker', ['--tlsverify', '--tlscacert', f('ca.pem'), '--tlscert', f('client.pem'), '--tlskey', f('client.key'),
    '-H', `tcp://127.0.0.1:${port}`, 'version', '--format', '{{.Server.APIVersion}}']);
  t.equal(docker.code, 0, 'docker --tlsverify talks to podserve', { stderr: docker.stderr });
  t.match(docker.stdout.trim(), /^1\.\d+$/);

  // Strangers: each request carries a marker the debug log would show if a request had been read.
  const strangers: [string, string[]][] = [
    ['no client certificate', [`${url}/_ping?who=nocert`]],
    ['a certificate from another CA', ['--cert', f('stranger.pem'), '--key', f('stranger.key'), `${url}/_ping?who=stranger`]],
    ['a self-signed client certificate (the CA itself)', ['--cert', f('stranger-ca.pem'), '--key', f('stranger-ca.key'), `${url}/_ping?who=selfsigned`]],
  ];
  for (const [what, args] of strangers) {
    const r = await curl(...args);
    t.not(r.code, 0, `refused: ${what}`);
    t.equal(r.stdout, '', `no answer for ${what}`);
  }
  const plain = await run('curl', ['-sS', '--max-time', '5', `http://127.0.0.1:${port}/_ping?who=plaintext`]);
  t.not(plain.code, 0, 'plain HTTP on the TLS port gets nothing');

  await new Promise((r) => setTimeout(r, 200));
  t.notMatch(log, /who=/, 'no request of a stranger was ever read');
  t.match(log, /TLS handshake refused/, 'the refusals are logged (debug)');
  t.equal(daemon.exitCode, null, 'still serving');
  const again = await curl('--cert', f('client.pem'), '--key', f('client.key'), `${url}/_ping`);
  t.equal(again.stdout, 'OK');
});

t.test('bad TLS files and plain TCP beyond loopback stop the start with a clear message', async (t) => {
  const dir = mkdtempSync('/tmp/pst-');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  await makeCertificates(dir);
  const f = (name: string): string => join(dir, name);
  const start = (args: string[]) => run(process.execPath, [CLI, '--root', f('root'), '--runroot', f('run'), 'service', '--time', '0', ...args], { timeout: 15_000 });

  const plain = await start(['tcp://0.0.0.0:2375']);
  t.equal(plain.code, 125);
  t.match(plain.stderr, /refusing plain tcp:\/\/0\.0\.0\.0:2375.*--tls-cert/);

  const missing = await start(['--tls-cert', f('nope.pem'), '--tls-key', f('server.key'), '--tls-ca', f('ca.pem'), 'tcp://127.0.0.1:1']);
  t.equal(missing.code, 125);
  t.match(missing.stderr, /cannot read --tls-cert .*nope\.pem/);

  const mismatched = await start(['--tls-cert', f('server.pem'), '--tls-key', f('client.key'), '--tls-ca', f('ca.pem'), 'tcp://127.0.0.1:1']);
  t.equal(mismatched.code, 125);
  t.match(mismatched.stderr, /do not make a usable TLS setup/);
});
