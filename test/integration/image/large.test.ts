import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import t from 'tap';
import tar from 'tar-stream';
import { tempStore } from './helpers.js';

/** PODSERVE_LARGE_MIB=1024 runs the same check with a 1 GiB layer (slower; the default keeps the suite fast). */
const layerBytes = Number(process.env.PODSERVE_LARGE_MIB ?? 256) * 1024 * 1024;

/** Writes `chunk` to a tar-stream sink, honouring backpressure. */
async function write(sink: ReturnType<ReturnType<typeof tar.pack>['entry']>, chunk: Buffer): Promise<void> {
  if (!sink.write(chunk)) await new Promise((r) => (sink as unknown as NodeJS.EventEmitter).once('drain', r));
}

/**
 * A docker-archive generated on the fly, never held in memory: one layer holding one file of
 * `size` bytes, then the config and manifest.json (written last, after the layer's digest is known).
 */
function generatedArchive(size: number): Readable {
  const outer = tar.pack();
  void (async () => {
    const innerSize = 512 + size + 1024; // header, data (a multiple of 512), end-of-archive blocks
    const layerSink = outer.entry({ name: 'big/layer.tar', size: innerSize });
    const inner = tar.pack();
    const fileSink = inner.entry({ name: 'data.bin', size, mode: 0o644 });
    const block = Buffer.alloc(1024 * 1024, 0x5a);
    void (async () => {
      for (let written = 0; written < size; written += block.length) await write(fileSink, block);
      (fileSink as unknown as { end(): void }).end();
      inner.finalize();
    })();
    const hash = createHash('sha256');
    for await (const chunk of inner as AsyncIterable<Buffer>) {
      hash.update(chunk);
      await write(layerSink, chunk);
    }
    (layerSink as unknown as { end(): void }).end();
    const diffId = `sha256:${hash.digest('hex')}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [diffId] } }));
    const id = createHash('sha256').update(config).digest('hex');
    outer.entry({ name: `${id}.json` }, config);
    outer.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: `${id}.json`, RepoTags: ['localhost/big:latest'], Layers: ['big/layer.tar'] }]));
    outer.finalize();
  })();
  return Readable.from(outer as AsyncIterable<Buffer>);
}

t.test(`a ${layerBytes / 2 ** 20} MiB layer loads with flat memory`, async (t) => {
  const { store } = await tempStore(t);
  global.gc?.();
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  try {
    const result = await store.load(generatedArchive(layerBytes));
    t.same(result.names, ['localhost/big:latest']);
  } finally {
    clearInterval(sampler);
  }
  const growth = peak - baseline;
  t.comment(`rss growth during load: ${(growth / 2 ** 20).toFixed(1)} MiB`);
  t.ok(growth < 96 * 2 ** 20, `memory stays flat (grew ${(growth / 2 ** 20).toFixed(1)} MiB for ${layerBytes / 2 ** 20} MiB of data)`);
  const [record] = store.list();
  const file = await stat(`${store.layerDiffDir(record!.layers[0]!)}/data.bin`);
  t.equal(file.size, layerBytes, 'layer content unpacked');
});
