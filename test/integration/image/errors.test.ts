import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { ImageStore } from '../../../src/image/store.js';
import { bufferStream, dockerArchive, fixtures, listTree, makeTar, repoRoot, sha256, silentLogger, tempDir, tempStore } from './helpers.js';

const fx = await fixtures();

t.test('bad archives are 400s with a clear message, and the store is left exactly as it was', async (t) => {
  const { store, root } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const before = await listTree(root);
  const recordsBefore = store.list();

  const docker = await readFile(fx.dockerTar);
  const oci = await readFile(fx.ociTar);
  const layer = await makeTar([{ name: 'ok', data: 'fine' }]);
  const good = await dockerArchive([layer]);
  const traversal = await dockerArchive([await makeTar([{ name: 'ok', data: '1' }, { name: '../../escape', data: 'x' }])]);
  const symlinkEscape = await dockerArchive([
    await makeTar([
      { name: 'etc', type: 'symlink', linkname: '/etc' },
      { name: 'etc/podserve-planted', data: 'x' },
    ]),
  ]);
  const mismatch = await dockerArchive([layer], { diffIds: [sha256('something else')] });
  const missingLayer = await makeTar([
    { name: `${good.id}.json`, data: JSON.stringify(good.config) },
    { name: 'manifest.json', data: JSON.stringify([{ Config: `${good.id}.json`, RepoTags: [], Layers: ['nope/layer.tar'] }]) },
  ]);
  const countMismatch = await dockerArchive([layer], { diffIds: [sha256(layer), sha256(layer)] });
  const badJson = await makeTar([{ name: 'manifest.json', data: '[{"Config": ' }]);
  const outerTraversal = await makeTar([{ name: '../outside.json', data: '{}' }, { name: 'manifest.json', data: '[]' }]);
  // OCI archive whose layer blob does not match its digest.
  const ociTampered = await (async () => {
    const tar = await import('tar-stream');
    const extract = tar.extract();
    const entries: Array<{ header: import('tar-stream').Header; body: Buffer }> = [];
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        parts.push(c as Buffer);
      });
      stream.on('end', () => {
        let body = Buffer.concat(parts);
        if (header.size > 100_000) {
          body = Buffer.from(body);
          body[body.length - 100] ^= 0xff; // flip a byte inside the gzip'ed layer
        }
        entries.push({ header, body });
        next();
      });
    });
    await new Promise<void>((res) => {
      extract.on('finish', () => res());
      extract.end(oci);
    });
    return makeTar(entries.map((e) => ({ ...e.header, pax: undefined, data: e.header.type === 'file' ? e.body : undefined })));
  })();

  const cases: Array<[string, () => Readable, RegExp]> = [
    ['truncated docker-archive', () => bufferStream(docker.subarray(0, docker.length / 2)), /truncated or corrupt/],
    ['truncated gzip', () => bufferStream(gzipSync(docker).subarray(0, 300_000)), /truncated or corrupt/],
    ['garbage', () => bufferStream(Buffer.alloc(10_000, 'x')), /truncated or corrupt.*Invalid tar header/],
    ['empty input', () => bufferStream(Buffer.alloc(0)), /empty or not a tar archive/],
    ['tar without image', () => bufferStream(layer), /payload does not match any of the supported image formats/],
    ['xz', () => bufferStream(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3])), /xz-compressed/],
    ['traversal inside a layer', () => bufferStream(traversal.archive), /entry "\.\.\/\.\.\/escape".*traversal/],
    ['write through a symlink', () => bufferStream(symlinkEscape.archive), /entry "etc\/podserve-planted".*"etc" is not a directory/],
    ['traversal in the archive', () => bufferStream(outerTraversal), /"\.\.\/outside\.json".*traversal/],
    ['diff ID mismatch', () => bufferStream(mismatch.archive), /digest mismatch: the image config expects sha256:[0-9a-f]{64}, the layer's content is/],
    ['missing layer', () => bufferStream(missingLayer), /layer "nope\/layer.tar" is missing from the archive/],
    ['layer count mismatch', () => bufferStream(countMismatch.archive), /lists 1 layers but its config has 2 diff IDs/],
    ['tampered OCI blob', () => bufferStream(ociTampered), /has digest sha256:[0-9a-f]{64} \(corrupt archive\)/],
    ['bad JSON', () => bufferStream(badJson), /manifest.json is not valid JSON/],
  ];
  for (const [what, input, match] of cases) {
    const err = await store.load(input()).then(
      () => undefined,
      (e: unknown) => e,
    );
    t.type(err, BadRequestError, what);
    t.match((err as Error | undefined)?.message ?? '', match, what);
    t.same(await listTree(root), before, `${what}: store unchanged`);
  }
  t.same(store.list(), recordsBefore);
  await t.rejects(readFile('/etc/podserve-planted'), { code: 'ENOENT' }, 'nothing planted through the symlink');
});

t.test('a bad import leaves the store unchanged', async (t) => {
  const { store, root } = await tempStore(t);
  const before = await listTree(root);
  await t.rejects(store.importRootfs(bufferStream(Buffer.alloc(5000, 'y'))), BadRequestError);
  await t.rejects(store.importRootfs(createReadStream(fx.rootfsTar), { changes: ['BOGUS x'] }), /invalid instruction BOGUS/);
  await t.rejects(store.importRootfs(createReadStream(fx.rootfsTar), { reference: 'UPPER' }), BadRequestError);
  await t.rejects(store.importRootfs(bufferStream(Buffer.alloc(0))), /empty/);
  t.same(await listTree(root), before);
});

t.test('open() removes what an interrupted operation left', async (t) => {
  const { store, root } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const before = await listTree(root);
  // Leftovers of a crash: staging, an unpacked layer nobody refers to (with and without its
  // record), an orphan blob.
  await mkdir(join(root, 'tmp', 'load-deadbeef', 'spool'), { recursive: true });
  await writeFile(join(root, 'tmp', 'load-deadbeef', 'spool', 'm1'), 'partial');
  const orphan = 'a'.repeat(64);
  await mkdir(join(root, 'layers', orphan, 'diff'), { recursive: true });
  await writeFile(join(root, 'layers', orphan, 'layer.json'), JSON.stringify({ diffId: `sha256:${orphan}`, size: 1, blob: { digest: `sha256:${'b'.repeat(64)}`, size: 1, compression: 'none' } }));
  await mkdir(join(root, 'layers', 'c'.repeat(64), 'diff'), { recursive: true });
  await writeFile(join(root, 'blobs', 'sha256', 'd'.repeat(64)), 'orphan blob');
  const reopened = await ImageStore.open(root, silentLogger());
  t.same(await listTree(root), before, 'leftovers gone, images intact');
  t.equal(reopened.resolve('busybox').id, fx.id);
});

t.test('a load killed halfway leaves no record and no staging after reopening', async (t) => {
  const dir = await tempDir(t, 'pcrash-');
  const root = join(dir, 'store');
  await ImageStore.open(root, silentLogger());
  const before = await listTree(root);
  // A child process loads from its stdin; we feed half an archive and kill it.
  const script = join(dir, 'child.mjs');
  await writeFile(
    script,
    `import { ImageStore } from ${JSON.stringify(join(repoRoot, 'dist/src/image/store.js'))};
import { pino } from ${JSON.stringify(join(repoRoot, 'node_modules/pino/pino.js'))};
const store = await ImageStore.open(process.argv[2], pino({ level: 'silent' }));
process.stdout.write('ready\\n');
await store.load(process.stdin);
process.stdout.write('loaded\\n');
`,
  );
  const child = execa('node', [script, root], { stdin: 'pipe', stdout: 'pipe', reject: false });
  await new Promise<void>((res) => child.stdout!.once('data', () => res()));
  const docker = await readFile(fx.dockerTar);
  child.stdin!.write(docker.subarray(0, docker.length - 4096));
  // Wait until the child has spooled most of it, then kill it without warning.
  for (let i = 0; i < 100; i++) {
    const staging = await readdir(join(root, 'tmp'));
    if (staging.length > 0) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  t.ok((await readdir(join(root, 'tmp'))).length > 0, 'child was mid-load');
  child.kill('SIGKILL');
  await child;
  const reopened = await ImageStore.open(root, silentLogger());
  t.same(reopened.list(), [], 'no image record');
  t.same(await listTree(root), before, 'store as it was');
});
