import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { ConflictError, NotFoundError, PodserveError, Sentinel } from '../../../src/errors.js';
import { toDockerListEntry, toHistoryResponse, toLibpodListEntry } from '../../../src/image/inspect.js';
import { bufferStream, dockerArchive, fixtures, listTree, makeTar, tempStore } from './helpers.js';

const fx = await fixtures();

t.test('name resolution follows Podman', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  await store.tag('busybox', 'quay.io/foo/bar', '1.0');
  await store.tag('busybox', 'docker.io/library/alpine', '3');
  const digest = store.list()[0]!.digest;
  const found: Array<[string, string]> = [
    ['busybox', 'localhost/busybox:latest'],
    ['busybox:latest', 'localhost/busybox:latest'],
    ['localhost/busybox', 'localhost/busybox:latest'],
    ['localhost/busybox:latest', 'localhost/busybox:latest'],
    [fx.id, `${fx.id}`],
    [fx.id.slice(0, 12), fx.id.slice(0, 12)],
    [fx.id.slice(0, 3), fx.id.slice(0, 3)],
    [`sha256:${fx.id}`, `sha256:${fx.id}`],
    [`busybox@${digest}`, `busybox@${digest}`],
    [`localhost/busybox@${digest}`, `localhost/busybox@${digest}`],
    [`localhost/busybox:latest@${digest}`, `localhost/busybox@${digest}`],
    ['bar:1.0', 'quay.io/foo/bar:1.0'],
    ['foo/bar:1.0', 'quay.io/foo/bar:1.0'],
    ['quay.io/foo/bar:1.0', 'quay.io/foo/bar:1.0'],
    ['alpine:3', 'docker.io/library/alpine:3'],
    ['docker.io/alpine:3', 'docker.io/library/alpine:3'],
    ['library/alpine:3', 'docker.io/library/alpine:3'],
  ];
  for (const [input, resolvedName] of found) {
    const r = store.lookup(input);
    t.equal(r?.record.id, fx.id, `${input} resolves`);
    t.equal(r?.resolvedName, resolvedName, `${input} resolves as ${resolvedName}`);
    t.ok(store.exists(input));
  }
  for (const input of ['bar', 'busybox:1.36', 'quay.io/busybox', `sha256:${fx.id.slice(0, 12)}`, 'BUSYBOX', '', 'o/bar:1.0', `nope@${'sha256:' + 'f'.repeat(64)}`]) {
    t.notOk(store.exists(input), `${JSON.stringify(input)} does not resolve`);
  }
  const err = (() => {
    try {
      store.resolve('nosuch');
      return undefined;
    } catch (e) {
      return e as PodserveError;
    }
  })();
  t.type(err, NotFoundError);
  t.equal(err?.status, 404);
  t.equal(err?.message, 'nosuch: image not known');
  t.equal(err?.causeText, Sentinel.noSuchImage);
});

t.test('an ambiguous ID prefix resolves to nothing', async (t) => {
  const { store } = await tempStore(t);
  const ids = new Set<string>();
  // Import the same root filesystem under different messages until two IDs share a first digit.
  for (let i = 0; i < 40; i++) {
    const r = await store.importRootfs(createReadStream(fx.rootfsTar), { message: `m${i}`, created: '2024-01-01T00:00:00Z' });
    const clash = [...ids].find((id) => id[0] === r.id[0]);
    ids.add(r.id);
    if (clash) {
      t.notOk(store.exists(r.id[0]!), 'one-character prefix shared by two images');
      t.equal(store.resolve(r.id.slice(0, 10)).id, r.id, 'a longer prefix is unique');
      return;
    }
  }
  t.fail('no two IDs with the same first digit in 40 imports');
});

t.test('tag and untag', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const other = await store.importRootfs(createReadStream(fx.rootfsTar), { reference: 'other' });
  t.equal(await store.tag('busybox', 'quay.io/x/y', '2'), 'quay.io/x/y:2');
  t.equal(await store.tag(fx.id, 'mine'), 'localhost/mine:latest', 'default tag latest, localhost/ added');
  t.same(store.resolve(fx.id).names, ['localhost/busybox:latest', 'quay.io/x/y:2', 'localhost/mine:latest']);
  t.same(store.resolve(fx.id).namesHistory, ['localhost/mine:latest', 'quay.io/x/y:2', 'localhost/busybox:latest'], 'newest first');

  await store.tag('other', 'quay.io/x/y', '2');
  t.same(store.resolve(fx.id).names, ['localhost/busybox:latest', 'localhost/mine:latest'], 'a name moves to the image tagged last');
  t.equal(store.resolve('quay.io/x/y:2').id, other.id);

  await t.rejects(store.tag('busybox', `sha256:${fx.id}`), /tag by digest not supported/);
  await t.rejects(store.tag('busybox', 'Bad Name'), { name: 'BadRequestError', status: 400 });
  await t.rejects(store.tag('nosuch', 'x'), { name: 'NotFoundError', status: 404 });

  t.same(await store.untag('busybox', 'mine'), ['localhost/mine:latest']);
  await t.rejects(store.untag('busybox', 'mine'), { status: 500, message: 'localhost/mine:latest: tag not known' });
  t.same(await store.untag(fx.id), ['localhost/busybox:latest'], 'no repo: every name goes');
  t.same(store.resolve(fx.id).names, []);
  t.ok(store.listDetails().find((d) => d.record.id === fx.id)!.dangling, 'untagged image is dangling');
});

t.test('remove: shared layers stay until their last image goes', async (t) => {
  const { store, root } = await tempStore(t);
  const empty = await listTree(root);
  await store.load(createReadStream(fx.dockerTar));
  // Same root filesystem → same layer, different image.
  const imported = await store.importRootfs(createReadStream(fx.rootfsTar), { reference: 'imported' });
  t.same(imported.layers, [fx.diffId]);
  t.equal(store.info().layerCount, 1, 'layer stored once');

  const r1 = await store.remove('busybox');
  t.same(r1, { untagged: ['localhost/busybox:latest'], deleted: [fx.id] });
  t.equal(store.info().layerCount, 1, 'layer still used by the imported image');
  t.ok((await readdir(join(root, 'layers'))).length === 1);

  const r2 = await store.remove('imported');
  t.same(r2, { untagged: ['localhost/imported:latest'], deleted: [imported.id] });
  t.same(await listTree(root), empty, 'store back to empty: layers, links and blobs gone');
});

t.test('remove: names, IDs, containers in use, force', async (t) => {
  const { store } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  await store.tag('busybox', 'second');

  t.same(await store.remove('second'), { untagged: ['localhost/second:latest'], deleted: [] }, 'by one of several names: untag only');
  await store.tag('busybox', 'second');
  await t.rejects(store.remove(fx.id), { status: 500, message: /by ID with more than one tag/ });
  await t.rejects(store.remove(`sha256:${fx.id}`), { status: 500, message: /by digest with more than one tag/ });

  let usedBy: string[] = ['c0ffee'];
  const inUse = (id: string): string[] => (id === fx.id ? usedBy : []);
  await store.untag('busybox', 'second');
  const conflict = await store.remove('busybox', { inUse }).then(
    () => undefined,
    (e: unknown) => e as PodserveError,
  );
  t.type(conflict, ConflictError);
  t.equal(conflict?.status, 409);
  t.equal(conflict?.causeText, Sentinel.imageInUse);
  t.match(conflict?.message, /^image used by c0ffee: image is in use by a container/);
  t.ok(store.exists('busybox'), 'still there');

  let removedContainersOf = '';
  const report = await store.remove('busybox', {
    inUse,
    force: true,
    removeContainers: async (id) => {
      removedContainersOf = id;
      usedBy = [];
    },
  });
  t.equal(removedContainersOf, fx.id, 'engine asked to remove the containers');
  t.same(report, { untagged: ['localhost/busybox:latest'], deleted: [fx.id] });

  const many = await store.removeMany(['nosuch', 'also-missing']);
  t.equal(many.errors.length, 2);
  t.equal(many.errors[0]!.status, 404);
  t.same((await store.removeMany(['nosuch'], { ignore: true })).errors, []);
});

t.test('parents, intermediate images, history, list shapes and prune', async (t) => {
  const { store, root } = await tempStore(t);
  const l1 = await makeTar([{ name: 'one', data: '1' }]);
  const l2 = await makeTar([{ name: 'two', data: '22' }]);
  const parent = await dockerArchive([l1], { repoTags: ['localhost/parent:latest'] });
  const child = await dockerArchive([l1, l2], { repoTags: ['localhost/child:latest'] });
  await store.load(bufferStream(parent.archive));
  await store.load(bufferStream(child.archive));
  await store.load(createReadStream(fx.dockerTar));

  t.equal(store.details('child').parentId, parent.id, 'parent found through layers and history');
  t.equal(store.details('parent').parentId, '');

  const history = store.history('child');
  t.same(
    history.map((h) => [h.id, h.createdBy, h.size]),
    [
      [child.id, 'layer 1', l2.length],
      [parent.id, 'layer 0', l1.length],
    ],
    'newest first, each entry with its layer size and the image that ends there',
  );
  t.same(toHistoryResponse(history)[0], { Id: child.id, Created: 1704164645, CreatedBy: 'layer 1', Tags: null, Size: l2.length, Comment: '' });

  await store.untag('parent');
  t.notOk(store.details(parent.id).dangling, 'untagged parent with a child is intermediate, not dangling');
  t.same(
    store.listDetails().map((d) => d.record.id).sort(),
    [child.id, fx.id].sort(),
    'intermediate images hidden by default',
  );
  t.equal(store.listDetails({ all: true }).length, 3);

  const entry = toLibpodListEntry(store.listDetails({ containers: (id) => (id === fx.id ? 2 : 0) }).find((d) => d.record.id === fx.id)!);
  t.same(Object.keys(entry), ['Id', 'ParentId', 'RepoTags', 'RepoDigests', 'Created', 'Size', 'SharedSize', 'VirtualSize', 'Labels', 'Containers', 'Names', 'Digest', 'History']);
  t.equal(entry.Containers, 2);
  t.equal(entry.Size, store.size(fx.id));
  t.equal(toDockerListEntry(store.listDetails().find((d) => d.record.id === fx.id)!).Id, `sha256:${fx.id}`);
  const childEntry = toLibpodListEntry(store.details('child'));
  t.equal(childEntry.ParentId, parent.id);

  t.same(await store.prune(), [], 'nothing dangling: the parent is intermediate');

  // Removing the child takes its now-dangling parent along.
  const removed = await store.remove('child');
  t.same(removed, { untagged: ['localhost/child:latest'], deleted: [child.id, parent.id] });
  t.equal(store.list().length, 1);

  // An untagged image is dangling: prune removes it, with its size; tagged ones need `all`.
  await store.load(bufferStream((await dockerArchive([l1], { repoTags: null })).archive));
  const dangling = store.listDetails().find((d) => d.dangling)!;
  const pruned = await store.prune();
  t.same(pruned, [{ id: dangling.record.id, size: dangling.size }]);
  t.same(await store.prune({ all: true, inUse: (id) => id === fx.id }), [], 'in-use images survive prune --all');
  const all = await store.prune({ all: true });
  t.same(all.map((p) => p.id), [fx.id]);
  t.same(await readdir(join(root, 'layers')), [], 'all layers gone');
});

t.test('a layer pinned by a running load or save outlives the removal of its image', async (t) => {
  const { store, root } = await tempStore(t);
  await store.load(createReadStream(fx.dockerTar));
  const internals = store as unknown as { pin(key: string): void; releasePins(keys: string[]): void };
  internals.pin(`layer:${fx.diffId}`);
  await store.remove('busybox');
  t.equal(store.info().layerCount, 1, 'pinned layer kept');
  t.ok((await readdir(join(root, 'layers'))).length === 1);
  internals.releasePins([`layer:${fx.diffId}`]);
  const blobs = join(root, 'blobs', 'sha256');
  for (let i = 0; i < 200 && (store.info().layerCount > 0 || (await readdir(blobs)).length > 0); i++) await new Promise((r) => setTimeout(r, 10));
  t.equal(store.info().layerCount, 0, 'collected once released');
  t.same(await readdir(join(root, 'layers')), []);
  t.same(await readdir(blobs), []);
});
