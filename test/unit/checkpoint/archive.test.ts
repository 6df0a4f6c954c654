/**
 * src/engine/checkpoint-archive.ts on real files: hostile archives stay inside their directory, and a rootfs
 * diff made from an overlay upper directory (whiteouts, opaque directories) applies back to the same tree.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import pino from 'pino';
import tar from 'tar-stream';
import { applyRootfsDiff, cleanMemberName, createRootfsDiff, decompressed, extractTar, packArchive } from '../../../src/engine/checkpoint-archive.js';

const logger = pino({ level: 'silent' });
const dir = mkdtempSync('/tmp/psca-');
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

interface Member {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link';
  body?: string;
  linkname?: string;
}

async function makeTar(members: Member[]): Promise<Buffer> {
  const pack = tar.pack();
  for (const m of members) {
    await new Promise<void>((resolve, reject) => {
      if (m.type === 'directory' || m.type === 'symlink' || m.type === 'link') {
        pack.entry({ name: m.name, type: m.type, linkname: m.linkname, mode: m.type === 'directory' ? 0o755 : 0o777 }, (err) => (err ? reject(err) : resolve()));
      } else {
        pack.entry({ name: m.name, mode: 0o644 }, m.body ?? '', (err) => (err ? reject(err) : resolve()));
      }
    });
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const extractInto = async (archive: Buffer, dest: string): Promise<number> =>
  extractTar(Readable.from([archive]), dest, { owners: false, logger, what: 'test archive' });

t.test('member names: relative and normalised, never above the root', async (t) => {
  t.equal(cleanMemberName('./checkpoint/inventory.img'), 'checkpoint/inventory.img');
  t.equal(cleanMemberName('/abs/path'), 'abs/path');
  t.equal(cleanMemberName('a//b/./c/'), 'a/b/c');
  t.equal(cleanMemberName('./'), null);
  t.throws(() => cleanMemberName('../etc/passwd'), /leaves the archive/);
  t.throws(() => cleanMemberName('a/../../b'), /leaves the archive/);
});

t.test('hostile archives: no write through a symlink, no escape', async (t) => {
  const outside = join(dir, 'outside');
  mkdirSync(outside);
  const dest = join(dir, 'x1');
  mkdirSync(dest);
  const evil = await makeTar([
    { name: 'link', type: 'symlink', linkname: outside },
    { name: 'link/owned', body: 'pwned' },
  ]);
  await t.rejects(extractInto(evil, dest), /symbolic link/);
  t.notOk(existsSync(join(outside, 'owned')), 'nothing written outside');

  // A member replacing an existing symlink replaces the link, not its target.
  const dest2 = join(dir, 'x2');
  mkdirSync(dest2);
  writeFileSync(join(outside, 'target'), 'original');
  symlinkSync(join(outside, 'target'), join(dest2, 'f'));
  await extractInto(await makeTar([{ name: 'f', body: 'new' }]), dest2);
  t.equal(readFileSync(join(outside, 'target'), 'utf8'), 'original');
  t.equal(readFileSync(join(dest2, 'f'), 'utf8'), 'new');
  t.notOk(lstatSync(join(dest2, 'f')).isSymbolicLink());

  await t.rejects(extractInto(await makeTar([{ name: '../up', body: 'x' }]), join(dir, 'x2')), /leaves the archive/);
  t.notOk(existsSync(join(dir, 'up')));
  // Hard links must point inside too.
  await t.rejects(extractInto(await makeTar([{ name: 'h', type: 'link', linkname: '../../etc/passwd' }]), dest2), /leaves the archive/);
});

t.test('gzip is undone, garbage is refused', async (t) => {
  const archive = await makeTar([{ name: 'config.dump', body: '{}' }, { name: 'checkpoint/', type: 'directory' }, { name: 'checkpoint/inventory.img', body: 'inv' }]);
  const dest = join(dir, 'gz');
  mkdirSync(dest);
  const members = await extractTar(await decompressed(Readable.from([gzipSync(archive)]), logger), dest, { owners: false, logger, what: 'archive' });
  t.equal(members, 3);
  t.equal(readFileSync(join(dest, 'checkpoint/inventory.img'), 'utf8'), 'inv');
  await t.rejects(extractInto(Buffer.alloc(4096, 7), join(dir, 'gz')), /invalid test archive/);
  await t.rejects(decompressed(Readable.from([Buffer.from('BZh91AY&SY')]), logger), /unsupported compression/);
});

t.test('packArchive streams directories and files, then cleans up', async (t) => {
  const src = join(dir, 'pack');
  mkdirSync(join(src, 'checkpoint'), { recursive: true });
  writeFileSync(join(src, 'checkpoint', 'pages-1.img'), Buffer.alloc(300_000, 1));
  writeFileSync(join(src, 'config.dump'), '{"id":"x"}');
  symlinkSync('../pre-checkpoint', join(src, 'checkpoint', 'parent'));
  let cleaned = false;
  const stream = packArchive(
    [
      { name: 'config.dump', path: join(src, 'config.dump') },
      { name: 'missing', path: join(src, 'missing') },
      { name: 'checkpoint', path: join(src, 'checkpoint') },
    ],
    logger,
    async () => {
      cleaned = true;
    },
  );
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(c);
  const dest = join(dir, 'unpacked');
  mkdirSync(dest);
  await extractInto(Buffer.concat(chunks), dest);
  t.equal(readFileSync(join(dest, 'config.dump'), 'utf8'), '{"id":"x"}');
  t.equal(readFileSync(join(dest, 'checkpoint/pages-1.img')).length, 300_000);
  t.equal(readlinkSync(join(dest, 'checkpoint/parent')), '../pre-checkpoint');
  t.notOk(existsSync(join(dest, 'missing')));
  await new Promise((r) => setImmediate(r));
  t.ok(cleaned, 'onClose ran');
});

t.test('rootfs diff from an overlay upper dir: changes, whiteouts and opaque directories round-trip', async (t) => {
  // The image (lower) and what the container did to it (upper, in overlayfs' on-disk format).
  const lower = join(dir, 'lower');
  for (const p of ['etc', 'data/old', 'keep']) mkdirSync(join(lower, p), { recursive: true });
  writeFileSync(join(lower, 'etc/group'), 'root:x:0:\n');
  writeFileSync(join(lower, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  writeFileSync(join(lower, 'data/old/a'), 'a');
  writeFileSync(join(lower, 'keep/k'), 'k');
  const upper = join(dir, 'upper');
  for (const p of ['etc', 'data', 'tmp']) mkdirSync(join(upper, p), { recursive: true });
  writeFileSync(join(upper, 'etc/passwd'), 'changed\n');
  execFileSync('mknod', [join(upper, 'etc/group'), 'c', '0', '0']); // whiteout: deleted
  mkdirSync(join(upper, 'data/old'));
  execFileSync('setfattr', ['-n', 'trusted.overlay.opaque', '-v', 'y', join(upper, 'data/old')]); // replaced wholesale
  writeFileSync(join(upper, 'data/old/b'), 'b');
  writeFileSync(join(upper, 'tmp/new'), 'new');
  symlinkSync('/etc/passwd', join(upper, 'tmp/link'));

  const out = join(dir, 'diffout');
  mkdirSync(out);
  const written = await createRootfsDiff(upper, out, logger);
  t.same(written.sort(), ['deleted.files', 'rootfs-diff.tar']);
  t.same(JSON.parse(readFileSync(join(out, 'deleted.files'), 'utf8')).sort(), ['data/old', 'etc/group']);

  // Applied to a copy of the image, the result is what the container saw.
  const target = join(dir, 'target');
  execFileSync('cp', ['-a', lower, target]);
  await applyRootfsDiff(out, target, logger);
  t.equal(readFileSync(join(target, 'etc/passwd'), 'utf8'), 'changed\n');
  t.notOk(existsSync(join(target, 'etc/group')), 'whiteout applied');
  t.notOk(existsSync(join(target, 'data/old/a')), 'opaque directory lost its image content');
  t.equal(readFileSync(join(target, 'data/old/b'), 'utf8'), 'b', 'and kept its new content');
  t.equal(readFileSync(join(target, 'tmp/new'), 'utf8'), 'new');
  t.equal(readlinkSync(join(target, 'tmp/link')), '/etc/passwd');
  t.equal(readFileSync(join(target, 'keep/k'), 'utf8'), 'k', 'untouched parts stay');

  // deleted.files entries cannot reach outside the root.
  const evil = join(dir, 'evil');
  mkdirSync(evil);
  writeFileSync(join(evil, 'deleted.files'), JSON.stringify(['../victim']));
  writeFileSync(join(dir, 'victim'), 'v');
  await t.rejects(applyRootfsDiff(evil, target, logger), /leaves the archive/);
  t.ok(existsSync(join(dir, 'victim')));
});
