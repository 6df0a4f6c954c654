import { lstat, mkdir, readFile, readlink, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { unpackLayer } from '../../../src/image/unpack.js';
import { bufferStream, makeTar, sha256, silentLogger, tempDir, type TarEntry } from '../../integration/image/helpers.js';

const mtime = new Date('2020-05-06T07:08:09Z');

async function unpack(t: Parameters<typeof tempDir>[0], entries: TarEntry[] | Buffer, gzip = false) {
  const dir = await tempDir(t, 'punp-');
  const dest = join(dir, 'diff');
  await mkdir(dest);
  const tarBytes = Buffer.isBuffer(entries) ? entries : await makeTar(entries);
  const input = gzip ? gzipSync(tarBytes) : tarBytes;
  const result = await unpackLayer(bufferStream(input, 1000), dest, dir, 'test layer', silentLogger());
  return { dir, dest, result, tarBytes };
}

async function getXattr(path: string, name: string): Promise<string | undefined> {
  try {
    const r = await execa('getfattr', ['-h', '--only-values', '-n', name, path]);
    return r.stdout;
  } catch {
    return undefined;
  }
}

t.test('files, directories, links and devices keep their metadata', async (t) => {
  const { dest, result, tarBytes } = await unpack(t, [
    { name: 'bin/', type: 'directory', mode: 0o750, uid: 3, gid: 4, mtime },
    { name: 'bin/tool', mode: 0o4755, uid: 1000, gid: 2000, mtime, data: '#!/bin/sh\necho tool\n' },
    { name: 'bin/alias', type: 'link', linkname: 'bin/tool' },
    { name: 'bin/sh', type: 'symlink', linkname: '/bin/tool', uid: 7, gid: 8, mtime },
    { name: 'etc/passwd', type: 'symlink', linkname: '../../../../etc/passwd' },
    { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/loop9', type: 'block-device', devmajor: 7, devminor: 9, mode: 0o660 },
    { name: 'run/fifo', type: 'fifo', mode: 0o600 },
    { name: 'data/x', mode: 0o644, data: 'x', pax: { 'SCHILY.xattr.user.podserve': 'hello' } },
  ]);
  t.equal(result.diffId, sha256(tarBytes), 'diff ID is the sha256 of the uncompressed tar');
  t.equal(result.size, tarBytes.length);
  t.equal(result.compression, 'none');

  const tool = await stat(join(dest, 'bin/tool'));
  t.equal(tool.mode & 0o7777, 0o4755, 'setuid bit kept (mode applied after chown)');
  t.equal(tool.uid, 1000);
  t.equal(tool.gid, 2000);
  t.equal(tool.mtime.getTime(), mtime.getTime());
  t.equal(await readFile(join(dest, 'bin/tool'), 'utf8'), '#!/bin/sh\necho tool\n');
  t.equal((await stat(join(dest, 'bin/alias'))).ino, tool.ino, 'hardlink shares the inode');

  const bin = await stat(join(dest, 'bin'));
  t.equal(bin.mode & 0o7777, 0o750);
  t.equal(bin.uid, 3);
  t.equal(bin.mtime.getTime(), mtime.getTime(), 'directory mtime survives the files written into it');

  const sh = await lstat(join(dest, 'bin/sh'));
  t.ok(sh.isSymbolicLink());
  t.equal(await readlink(join(dest, 'bin/sh')), '/bin/tool');
  t.equal(sh.uid, 7, 'symlink itself chowned');
  t.equal(await readlink(join(dest, 'etc/passwd')), '../../../../etc/passwd', 'link targets are stored, never followed');
  t.equal((await stat(join(dest, 'etc'))).mode & 0o777, 0o755, 'implicit parent directories are 0755');

  const nul = await lstat(join(dest, 'dev/null'));
  t.ok(nul.isCharacterDevice());
  t.equal(nul.rdev, (1 << 8) | 3);
  t.equal(nul.mode & 0o7777, 0o666);
  t.ok((await lstat(join(dest, 'dev/loop9'))).isBlockDevice());
  t.ok((await lstat(join(dest, 'run/fifo'))).isFIFO());
  t.equal(await getXattr(join(dest, 'data/x'), 'user.podserve'), 'hello', 'SCHILY xattr restored');
});

t.test('whiteouts become overlay whiteouts; opaque markers become the opaque xattr', async (t) => {
  const { dest } = await unpack(t, [
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/.wh.motd', data: '' },
    { name: 'var/cache/.wh..wh..opq', data: '' },
    { name: 'var/cache/new', data: 'n' },
    { name: '.wh..wh.plnk/123', data: '' },
  ]);
  const wh = await lstat(join(dest, 'etc/motd'));
  t.ok(wh.isCharacterDevice(), 'whiteout is a character device');
  t.equal(wh.rdev, 0, '0/0');
  t.same((await readdir(join(dest, 'etc'))).sort(), ['motd'], 'the .wh. file itself is not written');
  t.equal(await getXattr(join(dest, 'var/cache'), 'trusted.overlay.opaque'), 'y');
  t.same(await readdir(join(dest, 'var/cache')), ['new']);
  t.same((await readdir(dest)).sort(), ['etc', 'var'], 'aufs metadata (.wh..wh.*) ignored');
});

t.test('gzip layers: same diff ID as the plain tar', async (t) => {
  const entries: TarEntry[] = [{ name: 'a', data: 'a' }];
  const plain = await makeTar(entries);
  const { result } = await unpack(t, plain, true);
  t.equal(result.diffId, sha256(plain));
  t.equal(result.compression, 'gzip');
});

t.test('out-of-order and repeated entries: implicit parents, later entry wins', async (t) => {
  const { dest } = await unpack(t, [
    { name: 'a/b/c', data: 'first' },
    { name: 'a/b/c', data: 'second' },
    { name: 'a/', type: 'directory', mode: 0o711 },
    { name: 'x', data: 'file' },
    { name: 'x/', type: 'directory', mode: 0o755 },
    { name: './y', type: 'symlink', linkname: 'x' },
    { name: 'y', data: 'replaced the link' },
  ]);
  t.equal(await readFile(join(dest, 'a/b/c'), 'utf8'), 'second');
  t.equal((await stat(join(dest, 'a'))).mode & 0o777, 0o711);
  t.ok((await lstat(join(dest, 'x'))).isDirectory());
  t.ok((await lstat(join(dest, 'y'))).isFile());
});

t.test('path traversal and escapes are refused, naming the entry, with nothing written outside', async (t) => {
  const outside = await tempDir(t, 'pout-');
  const cases: Array<{ what: string; entries: TarEntry[]; match: RegExp }> = [
    { what: 'dot-dot', entries: [{ name: '../escape', data: 'x' }], match: /"\.\.\/escape".*traversal/ },
    { what: 'inner dot-dot', entries: [{ name: 'a/../../escape', data: 'x' }], match: /a\/\.\.\/\.\.\/escape/ },
    { what: 'absolute', entries: [{ name: '/etc/evil', data: 'x' }], match: /"\/etc\/evil".*absolute/ },
    {
      what: 'through a symlink',
      entries: [
        { name: 'link', type: 'symlink', linkname: outside },
        { name: 'link/planted', data: 'x' },
      ],
      match: /"link\/planted".*"link" is not a directory/,
    },
    {
      what: 'through a relative symlink',
      entries: [
        { name: 'up', type: 'symlink', linkname: '../../../../..' },
        { name: `up${outside}/planted2`, data: 'x' },
      ],
      match: /not a directory/,
    },
    { what: 'hardlink out', entries: [{ name: 'h', type: 'link', linkname: '../../../etc/passwd' }], match: /hardlink "h" target.*traversal/ },
    { what: 'hardlink absolute', entries: [{ name: 'h', type: 'link', linkname: '/etc/passwd' }], match: /absolute/ },
    { what: 'hardlink missing', entries: [{ name: 'h', type: 'link', linkname: 'nope' }], match: /does not exist in this layer/ },
    {
      what: 'hardlink via symlinked dir',
      entries: [
        { name: 'etcl', type: 'symlink', linkname: '/etc' },
        { name: 'h', type: 'link', linkname: 'etcl/passwd' },
      ],
      match: /outside this layer/,
    },
  ];
  for (const c of cases) {
    const err = await unpack(t, c.entries).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, BadRequestError, c.what);
    t.match((err as Error | undefined)?.message ?? '', c.match, c.what);
  }
  t.same(await readdir(outside), [], 'nothing planted outside');
});

t.test('truncated or non-tar input is a clear 400', async (t) => {
  const good = await makeTar([{ name: 'big', data: Buffer.alloc(100_000, 7) }]);
  const truncated = await unpack(t, good.subarray(0, 50_000)).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(truncated, BadRequestError);
  t.match((truncated as Error).message, /test layer is truncated or corrupt/);
  const garbage = await unpack(t, Buffer.alloc(2048, 0x41)).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(garbage, BadRequestError);
  t.match((garbage as Error).message, /truncated or corrupt.*Invalid tar header/);
  const gzTruncated = await unpack(t, gzipSync(good).subarray(0, 60)).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.type(gzTruncated, BadRequestError, 'truncated gzip');
});
