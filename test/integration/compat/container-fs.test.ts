/**
 * The file-system side of docker cp on a scratch root: symlinks never lead out of the root, hostile archive
 * entries stay inside it, Docker's stat encoding (Go FileMode) and archive names.
 */
import t from 'tap';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import tar from 'tar-stream';
import {
  archiveBaseName, extractArchive, goFileMode, resolveInRoot, statInRoot, writeArchive,
} from '../../../routes/compat/container-fs.js';

const scratch = mkdtempSync('/tmp/pscf-');
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));
const root = join(scratch, 'root');
const outside = join(scratch, 'outside');
mkdirSync(join(root, 'etc'), { recursive: true });
mkdirSync(join(root, 'data', 'deep'), { recursive: true });
mkdirSync(outside);
writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0\n');
writeFileSync(join(outside, 'secret'), 'host secret\n');
symlinkSync('/etc', join(root, 'abs-etc'));
symlinkSync('../../..', join(root, 'data', 'deep', 'up'));
symlinkSync(outside, join(root, 'host-dir'));
symlinkSync('loop2', join(root, 'loop1'));
symlinkSync('loop1', join(root, 'loop2'));

async function tarOf(entries: { name: string; type?: 'file' | 'directory' | 'symlink' | 'link'; body?: string; linkname?: string; mode?: number }[]): Promise<Readable> {
  const pack = tar.pack();
  for (const e of entries) {
    await new Promise<void>((resolve, reject) =>
      pack.entry({ name: e.name, type: e.type ?? 'file', linkname: e.linkname, mode: e.mode ?? 0o644, uid: 1234, gid: 1234 }, e.body ?? '', (err) => (err ? reject(err) : resolve())),
    );
  }
  pack.finalize();
  return pack as unknown as Readable;
}

async function listTar(write: (out: PassThrough) => Promise<void>): Promise<{ name: string; type: string; linkname: string }[]> {
  const out = new PassThrough();
  const extract = tar.extract();
  const names: { name: string; type: string; linkname: string }[] = [];
  const reading = (async () => {
    for await (const entry of extract) {
      names.push({ name: entry.header.name, type: entry.header.type, linkname: entry.header.linkname ?? '' });
      entry.resume();
    }
  })();
  out.pipe(extract as unknown as NodeJS.WritableStream);
  await write(out);
  await reading;
  return names;
}

t.test('resolveInRoot keeps .. and symlinks inside the root', async (t) => {
  t.equal(await resolveInRoot(root, '/abs-etc/passwd', true), '/etc/passwd', 'absolute links are relative to the root');
  t.equal(await resolveInRoot(root, '/data/deep/up/etc', true), '/etc', 'relative links stop at the root');
  t.equal(await resolveInRoot(root, '/../../etc', true), '/etc');
  t.equal(await resolveInRoot(root, '/host-dir/secret', true), `${outside}/secret`, 'a host path is taken as a path inside the root');
  t.equal(await resolveInRoot(root, '/abs-etc', false), '/abs-etc', 'the last link is kept unless asked');
  t.equal(await resolveInRoot(root, '/missing/a/b', true), '/missing/a/b');
  await t.rejects(resolveInRoot(root, '/loop1/x', true), { name: 'BadRequestError' });
});

t.test('statInRoot: Docker names, Go modes and link targets', async (t) => {
  const passwd = await statInRoot(root, '/abs-etc/passwd');
  t.match(passwd.stat, { name: 'passwd', size: 11, mode: 0o644, linkTarget: '' });
  const link = await statInRoot(root, '/abs-etc');
  t.match(link.stat, { name: 'abs-etc', mode: 2 ** 27 + 0o777, linkTarget: '/etc' });
  const followed = await statInRoot(root, '/abs-etc/');
  t.equal(followed.stat.mode, 2 ** 31 + (statSync(join(root, 'etc')).mode & 0o777), 'a trailing slash follows the link');
  await t.rejects(statInRoot(root, '/host-dir/secret'), { name: 'NotFoundError' }, 'the host file is not reachable');
  await t.rejects(statInRoot(root, ''), { name: 'BadRequestError' });
  t.equal(goFileMode(0o104755), 2 ** 23 + 0o755, 'setuid');
  t.equal(goFileMode(0o020666), 2 ** 26 + 2 ** 21 + 0o666, 'character device');
  t.equal(goFileMode(0o041777), 2 ** 31 + 2 ** 20 + 0o777, 'sticky directory');
  t.equal(archiveBaseName('/etc/'), 'etc');
  t.equal(archiveBaseName('/etc/.'), '.');
  t.equal(archiveBaseName('/etc/passwd'), 'passwd');
});

t.test('writeArchive names entries from the requested name and keeps links', async (t) => {
  const entries = await listTar((out) => writeArchive(out, join(root, 'data'), 'data'));
  t.same(entries, [
    { name: 'data/', type: 'directory', linkname: '' },
    { name: 'data/deep/', type: 'directory', linkname: '' },
    { name: 'data/deep/up', type: 'symlink', linkname: '../../..' },
  ]);
  const flat = await listTar((out) => writeArchive(out, join(root, 'etc'), ''));
  t.same(flat.map((e) => e.name), ['passwd'], 'export style: contents without the top directory');
});

t.test('extractArchive stays inside the root whatever the entries say', async (t) => {
  await extractArchive(
    root,
    '/data',
    await tarOf([
      { name: '../../escape.txt', body: 'nope' },
      { name: '/abs.txt', body: 'abs' },
      { name: 'evil', type: 'symlink', linkname: '/' },
      { name: 'evil/etc/planted', body: 'through a symlink' },
      { name: 'viahost', type: 'symlink', linkname: outside },
      { name: 'viahost/secret', body: 'overwritten?' },
      { name: 'dir/', type: 'directory', mode: 0o750 },
      { name: 'dir/file', body: 'hello', mode: 0o600 },
      { name: 'hard', type: 'link', linkname: 'dir/file' },
    ]),
    { copyUidGid: false, noOverwriteDirNonDir: false },
  );
  t.notOk(existsSync(join(scratch, 'escape.txt')));
  t.equal(readFileSync(join(root, 'data', 'escape.txt'), 'utf8'), 'nope', '.. is clamped to the destination');
  t.equal(readFileSync(join(root, 'data', 'abs.txt'), 'utf8'), 'abs');
  t.equal(readlinkSync(join(root, 'data', 'evil')), '/');
  t.equal(readFileSync(join(root, 'etc', 'planted'), 'utf8'), 'through a symlink', 'a link to / means the container root');
  t.equal(readFileSync(join(outside, 'secret'), 'utf8'), 'host secret\n', 'the host file is untouched');
  t.equal(readFileSync(join(root, outside, 'secret'), 'utf8'), 'overwritten?');
  t.equal(lstatSync(join(root, 'data', 'dir')).mode & 0o777, 0o750);
  t.equal(lstatSync(join(root, 'data', 'dir', 'file')).mode & 0o777, 0o600);
  t.equal(lstatSync(join(root, 'data', 'dir', 'file')).uid, 0, 'root-owned without copyUIDGID');
  t.equal(lstatSync(join(root, 'data', 'hard')).ino, lstatSync(join(root, 'data', 'dir', 'file')).ino, 'hard links are links');

  await extractArchive(root, '/data', await tarOf([{ name: 'owned', body: 'x' }]), { copyUidGid: true, noOverwriteDirNonDir: false });
  t.equal(lstatSync(join(root, 'data', 'owned')).uid, 1234, 'copyUIDGID keeps the archive owner');

  await t.rejects(
    extractArchive(root, '/data', await tarOf([{ name: 'dir', body: 'file over a directory' }]), { copyUidGid: false, noOverwriteDirNonDir: true }),
    { name: 'BadRequestError' },
  );
  await t.rejects(extractArchive(root, '/etc/passwd', await tarOf([]), { copyUidGid: false, noOverwriteDirNonDir: false }), { name: 'BadRequestError' });
  await t.rejects(extractArchive(root, '/nope', await tarOf([]), { copyUidGid: false, noOverwriteDirNonDir: false }), { name: 'NotFoundError' });
});
