/** Shared helpers of the image-store tests: fixtures, throw-away stores, hand-made archives. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { pino, type Logger } from 'pino';
import tar from 'tar-stream';
import { ImageStore } from '../../../src/image/store.js';

/** Repository root (tests run from dist/test/…). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
export const fixtureDir = process.env.PODSERVE_FIXTURES ?? '/var/tmp/podserve-fixtures';

export interface Fixtures {
  dir: string;
  rootfsTar: string;
  dockerTar: string;
  dockerTarGz: string;
  ociTar: string;
  ociTarGz: string;
  /** Image ID podman gave the imported busybox. */
  id: string;
  /** Diff ID of the busybox layer (sha256 of the rootfs tar). */
  diffId: string;
}

let fixturesPromise: Promise<Fixtures> | undefined;

export function fixtures(): Promise<Fixtures> {
  fixturesPromise ??= (async () => {
    await execa(join(repoRoot, 'scripts/fixtures.sh'), [fixtureDir]);
    const rootfsTar = join(fixtureDir, 'busybox-rootfs.tar');
    return {
      dir: fixtureDir,
      rootfsTar,
      dockerTar: join(fixtureDir, 'busybox-docker.tar'),
      dockerTarGz: join(fixtureDir, 'busybox-docker.tar.gz'),
      ociTar: join(fixtureDir, 'busybox-oci.tar'),
      ociTarGz: join(fixtureDir, 'busybox-oci.tar.gz'),
      id: readFileSync(join(fixtureDir, 'busybox.id'), 'utf8').trim(),
      diffId: `sha256:${createHash('sha256').update(readFileSync(rootfsTar)).digest('hex')}`,
    };
  })();
  return fixturesPromise;
}

export function silentLogger(): Logger {
  return pino({ level: process.env.PODSERVE_TEST_LOG ?? 'silent' });
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Unmounts everything mounted below `dir` (deepest first). */
export async function unmountBelow(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  const points = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const p of points) await execa('umount', ['-l', p]).catch(() => undefined);
}

/** A temp directory removed (after unmounting what is below it) when the test ends. */
export async function tempDir(t: Teardown, prefix = 'pimg-'): Promise<string> {
  const dir = await mkdtemp(join('/tmp', prefix));
  t.teardown(async () => {
    await unmountBelow(dir);
    await rm(dir, { recursive: true, force: true });
  });
  return dir;
}

export async function tempStore(t: Teardown): Promise<{ store: ImageStore; root: string; dir: string }> {
  const dir = await tempDir(t);
  const root = join(dir, 'store');
  const store = await ImageStore.open(root, silentLogger());
  return { store, root, dir };
}

/** Every path below `dir` with its type, mode and size: to compare a store before and after. */
export async function listTree(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    const entries = await readdir(join(dir, rel));
    for (const name of entries.sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(dir, r));
      const kind = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : 'o';
      out.push(`${kind} ${r} ${st.mode.toString(8)} ${st.isFile() ? st.size : ''}`);
      if (st.isDirectory()) await walk(r);
    }
  }
  await walk('');
  return out;
}

export type TarEntry = Partial<tar.Header> & { name: string; data?: Buffer | string; pax?: Record<string, string> };

/** Builds a tar archive in memory (tests only: small content). */
export async function makeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((res, rej) => {
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => res());
    pack.on('error', rej);
  });
  for (const e of entries) {
    const { data, ...header } = e;
    const body = data === undefined ? undefined : Buffer.isBuffer(data) ? data : Buffer.from(data);
    await new Promise<void>((res, rej) => {
      const cb = (err?: Error | null): void => (err ? rej(err) : res());
      const h = { mtime: new Date(1_700_000_000_000), uid: 0, gid: 0, ...header } as tar.Header;
      if (body) pack.entry(h, body, cb);
      else pack.entry(h, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const sha256 = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface HandMadeImage {
  archive: Buffer;
  id: string;
  config: Record<string, unknown>;
  diffIds: string[];
}

/**
 * A docker-archive built by hand: one config, the given layer tars (optionally gzipped inside the
 * archive), manifest.json written last (as some writers do).
 */
export async function dockerArchive(
  layers: readonly Buffer[],
  opts: { repoTags?: string[] | null; gzipLayers?: boolean; diffIds?: string[]; config?: Record<string, unknown>; extraEntries?: TarEntry[] } = {},
): Promise<HandMadeImage> {
  const diffIds = opts.diffIds ?? layers.map((l) => sha256(l));
  const config = {
    created: '2024-01-02T03:04:05Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map((_, i) => ({ created: '2024-01-02T03:04:05Z', created_by: `layer ${i}` })),
    ...opts.config,
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const id = sha256(configBytes).slice('sha256:'.length);
  const entries: TarEntry[] = [];
  const names: string[] = [];
  layers.forEach((l, i) => {
    const name = `layer${i}/layer.tar`;
    names.push(name);
    entries.push({ name, data: opts.gzipLayers ? gzipSync(l) : l });
  });
  entries.push({ name: `${id}.json`, data: configBytes });
  entries.push(...(opts.extraEntries ?? []));
  entries.push({
    name: 'manifest.json',
    data: JSON.stringify([{ Config: `${id}.json`, RepoTags: opts.repoTags === undefined ? ['localhost/handmade:latest'] : opts.repoTags, Layers: names }]),
  });
  return { archive: await makeTar(entries), id, config, diffIds };
}

export function bufferStream(b: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= b.length) {
        this.push(null);
        return;
      }
      this.push(b.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** podman, as a test tool only, with a private store under `dir`. */
export function podman(dir: string, args: readonly string[]): ReturnType<typeof execa> {
  return execa('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'overlay', ...args]);
}

export async function cleanupPodman(dir: string): Promise<void> {
  await unmountBelow(dir);
  await rm(dir, { recursive: true, force: true });
}
