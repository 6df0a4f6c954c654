import { createReadStream } from 'node:fs';
import { readdir, readFile, stat, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { bufferStream, dockerArchive, fixtures, makeTar, tempStore } from './helpers.js';

const fx = await fixtures();

async function mountCount(path: string): Promise<number> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').filter((l) => l.split(' ')[4] === path).length;
}

t.test('busybox root filesystem: readable, writes go to the upper directory', async (t) => {
  const { store, dir } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const ctr = join(dir, 'ctr1');
  const merged = await store.mountRootfs(fx.id, ctr);
  t.equal(merged, join(ctr, 'merged'));
  t.ok(await store.isMounted(ctr));
  const { stdout } = await execa(join(merged, 'bin/busybox'), ['echo', 'hello from the image']);
  t.equal(stdout, 'hello from the image');
  t.equal((await lstat(join(merged, 'bin/sh'))).isSymbolicLink(), true);
  t.match(await readFile(join(merged, 'etc/passwd'), 'utf8'), /^root:x:0:0:/);

  await writeFile(join(merged, 'tmp/written'), 'by the container');
  t.equal(await readFile(join(ctr, 'upper/tmp/written'), 'utf8'), 'by the container', 'write landed in upper/');
  await t.rejects(stat(join(store.layerDiffDir(fx.diffId), 'tmp/written')), { code: 'ENOENT' }, 'the layer is untouched');

  t.equal(await store.mountRootfs(fx.id, ctr), merged, 'mounting again is a no-op');
  t.equal(await mountCount(merged), 1);

  // A second container shares the layer with its own upper directory.
  const other = await store.mountRootfs('busybox', join(dir, 'ctr2'));
  await t.rejects(stat(join(other, 'tmp/written')), { code: 'ENOENT' });

  await store.unmountRootfs(ctr);
  t.notOk(await store.isMounted(ctr));
  await store.unmountRootfs(ctr); // idempotent
  t.equal(await readFile(join(ctr, 'upper/tmp/written'), 'utf8'), 'by the container', 'upper survives unmount');
  await store.unmountRootfs(join(dir, 'ctr2'));
});

t.test('two layers: whiteouts and opaque directories hide what is below', async (t) => {
  const { store, dir } = await tempStore(t);
  const lower = await makeTar([
    { name: 'etc/', type: 'directory', mode: 0o755 },
    { name: 'etc/motd', data: 'hello' },
    { name: 'etc/keep', data: 'kept' },
    { name: 'var/cache/a', data: 'a' },
    { name: 'var/cache/sub/b', data: 'b' },
  ]);
  const upper = await makeTar([
    { name: 'etc/.wh.motd', data: '' },
    { name: 'var/cache/.wh..wh..opq', data: '' },
    { name: 'var/cache/c', data: 'c' },
    { name: 'new', data: 'new' },
  ]);
  const image = await dockerArchive([lower, upper], { repoTags: ['localhost/layered:latest'] });
  await store.load(bufferStream(image.archive));
  const merged = await store.mountRootfs(image.id, join(dir, 'ctr'));
  t.same((await readdir(join(merged, 'etc'))).sort(), ['keep'], 'whiteout hides etc/motd');
  t.same(await readdir(join(merged, 'var/cache')), ['c'], 'opaque directory hides the lower contents');
  t.equal(await readFile(join(merged, 'new'), 'utf8'), 'new');
  t.equal(await readFile(join(merged, 'etc/keep'), 'utf8'), 'kept');

  const gd = store.inspect('layered').GraphDriver as { Data: Record<string, string> };
  t.same(gd.Data, {
    LowerDir: store.layerDiffDir(image.diffIds[0]!),
    UpperDir: store.layerDiffDir(image.diffIds[1]!),
    WorkDir: store.layerDiffDir(image.diffIds[1]!).replace(/diff$/, 'work'),
  });
  await store.unmountRootfs(join(dir, 'ctr'));
});

t.test('an image with more layers than one page of mount options holds still mounts, every layer visible', async (t) => {
  const { store, dir } = await tempStore(t);
  // Each lower directory is an absolute path of some 50 bytes here: 100 of them exceed the page mount(2) takes,
  // so this goes through util-linux mount run among the short layer links; a small image takes the system call.
  const layers = await Promise.all(Array.from({ length: 100 }, (_, i) => makeTar([{ name: `layer-${i}`, data: String(i) }])));
  const image = await dockerArchive(layers, { repoTags: ['localhost/tall:latest'] });
  await store.load(bufferStream(image.archive));
  const merged = await store.mountRootfs('tall', join(dir, 'ctr'));
  const names = await readdir(merged);
  t.equal(names.length, 100, 'a file from every layer');
  t.equal(await readFile(join(merged, 'layer-0'), 'utf8'), '0');
  t.equal(await readFile(join(merged, 'layer-99'), 'utf8'), '99');
  await store.unmountRootfs(join(dir, 'ctr'));
  t.notOk(await store.isMounted(join(dir, 'ctr')));
});

t.test('an image without layers mounts an empty root', async (t) => {
  const { store, dir } = await tempStore(t);
  const image = await dockerArchive([], { repoTags: ['localhost/scratch:latest'] });
  await store.load(bufferStream(image.archive));
  const merged = await store.mountRootfs('scratch', join(dir, 'ctr'));
  t.same(await readdir(merged), []);
  await writeFile(join(merged, 'f'), 'x');
  t.same(await readdir(join(store.root, 'empty')), [], 'the shared empty directory stays empty');
  await store.unmountRootfs(join(dir, 'ctr'));
});

t.test('mounting an unknown image is a 404', async (t) => {
  const { store, dir } = await tempStore(t);
  await t.rejects(store.mountRootfs('f'.repeat(64), join(dir, 'ctr')), { name: 'NotFoundError' });
});
