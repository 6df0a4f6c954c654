/** Pure parts of the registry client and pull/push: challenges, credentials, names, platform choice, progress text. */
import t from 'tap';
import { credentialsFor, guessManifestType, isLoopbackRegistry, parseChallenges, parseRegistryAuthHeader } from '../../../src/image/registry.js';
import { chooseInstance, pullCandidates } from '../../../src/image/pull.js';
import { pushDestination } from '../../../src/image/push.js';
import { formatReference } from '../../../src/image/reference.js';
import { MediaType, type OciIndex } from '../../../src/image/types.js';
import { dockerProgressMessage, goJsonLine, humanSize, progressBar } from '../../../routes/shapes/registry.js';

const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

t.test('WWW-Authenticate challenges', async (t) => {
  t.same(parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"'), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull' } },
  ]);
  t.same(parseChallenges('Basic realm="x \\"quoted\\""'), [{ scheme: 'basic', params: { realm: 'x "quoted"' } }]);
  t.same(parseChallenges(['Basic realm=plain', 'Bearer realm="r"']), [
    { scheme: 'basic', params: { realm: 'plain' } },
    { scheme: 'bearer', params: { realm: 'r' } },
  ]);
  t.same(parseChallenges(undefined), []);
});

t.test('X-Registry-Auth and X-Registry-Config', async (t) => {
  t.same(parseRegistryAuthHeader(b64url({ username: 'u', password: 'p' })), { default: { username: 'u', password: 'p' } });
  t.same(parseRegistryAuthHeader(b64url({ auth: Buffer.from('u:p:q').toString('base64') })), { default: { username: 'u', password: 'p:q' } }, 'Docker\'s "auth" field');
  t.same(parseRegistryAuthHeader(b64url({ identitytoken: 'tok' })), { default: { identityToken: 'tok' } });
  t.same(parseRegistryAuthHeader(b64url({ 'quay.io': { username: 'a', password: 'b' } })), { registries: { 'quay.io': { username: 'a', password: 'b' } } }, 'a map (podman-remote)');
  t.same(parseRegistryAuthHeader(b64url({})), { registries: {} }, 'docker\'s empty config');
  t.same(parseRegistryAuthHeader(b64url({ '': { username: 'd', password: 'e' } }), 'X-Registry-Config'), { registries: {}, default: { username: 'd', password: 'e' } });
  t.same(parseRegistryAuthHeader(Buffer.from(JSON.stringify({ username: 'u', password: 'p' })).toString('base64')), { default: { username: 'u', password: 'p' } }, 'padded base64 too');
  t.same(parseRegistryAuthHeader('null'), {});
  t.throws(() => parseRegistryAuthHeader('@@@'), /failed to parse "X-Registry-Auth" header/);
});

t.test('credentials for a registry', async (t) => {
  const auth = {
    registries: {
      'https://index.docker.io/v1/': { username: 'hub' },
      'quay.io': { username: 'quay' },
      'quay.io/org': { username: 'org' },
      'localhost:5000': { username: '' },
    },
  };
  t.equal(credentialsFor(auth, 'docker.io', 'library/busybox')?.username, 'hub');
  t.equal(credentialsFor(auth, 'quay.io', 'other/x')?.username, 'quay');
  t.equal(credentialsFor(auth, 'quay.io', 'org/x')?.username, 'org', 'the most specific key wins');
  t.equal(credentialsFor(auth, 'localhost:5000', 'x'), undefined, 'empty credentials are none');
  t.equal(credentialsFor({ ...auth, default: { username: 'd' } }, 'quay.io', 'org/x')?.username, 'd', 'the default wins');
  t.equal(credentialsFor(undefined, 'quay.io', 'x'), undefined);
});

t.test('loopback registries', async (t) => {
  for (const r of ['localhost:5000', 'localhost', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000']) t.ok(isLoopbackRegistry(r), r);
  for (const r of ['quay.io', '10.0.0.1:5000', 'docker.io', 'localhost.example.com']) t.notOk(isLoopbackRegistry(r), r);
});

t.test('manifest types from content when the Content-Type says nothing', async (t) => {
  const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
  t.equal(guessManifestType(j({}), 'application/vnd.oci.image.manifest.v1+json; charset=utf-8'), MediaType.ociManifest);
  t.equal(guessManifestType(j({ schemaVersion: 2, manifests: [] }), 'application/json'), MediaType.ociIndex);
  t.equal(guessManifestType(j({ schemaVersion: 2, config: { mediaType: MediaType.dockerConfig } }), undefined), MediaType.dockerManifest);
  t.equal(guessManifestType(j({ schemaVersion: 2, config: { mediaType: MediaType.ociConfig } }), 'text/plain'), MediaType.ociManifest);
  t.match(guessManifestType(j({ schemaVersion: 1, signatures: [] }), ''), /manifest\.v1\+prettyjws/);
});

t.test('pull candidates', async (t) => {
  const names = (ref: string, search: string[] = [], hub = false): string[] => pullCandidates(ref, search, hub).map(formatReference);
  t.same(names('127.0.0.1:5000/busybox'), ['127.0.0.1:5000/busybox:latest']);
  t.same(names('docker://busybox'), ['docker.io/library/busybox:latest'], 'docker:// means Docker Hub');
  t.same(names('quay.io/a/b:1@sha256:' + 'a'.repeat(64)), ['quay.io/a/b@sha256:' + 'a'.repeat(64)], 'the digest wins over the tag');
  t.same(names('busybox', ['quay.io', 'docker.io']), ['quay.io/busybox:latest', 'docker.io/library/busybox:latest']);
  t.same(names('busybox:1', [], true), ['docker.io/library/busybox:1'], "Docker clients' short names");
  t.throws(() => names('busybox'), /short-name "busybox" did not resolve to an alias and no unqualified-search registries are defined/);
  t.throws(() => names('oci-archive:/tmp/x.tar'), /unsupported transport "oci-archive"/);
  t.throws(() => names('UPPER/case'), /parsing reference/);
});

t.test('push destinations', async (t) => {
  t.equal(formatReference(pushDestination('busybox')), 'docker.io/library/busybox:latest');
  t.equal(formatReference(pushDestination('127.0.0.1:5000/a/b:2')), '127.0.0.1:5000/a/b:2');
  t.equal(formatReference(pushDestination('docker://localhost:5000/x')), 'localhost:5000/x:latest');
  t.throws(() => pushDestination('quay.io/a@sha256:' + 'b'.repeat(64)), /digest reference/);
});

t.test('choosing a platform from a list', async (t) => {
  const d = (n: string): string => `sha256:${n.repeat(64)}`;
  const list: OciIndex = {
    schemaVersion: 2,
    manifests: [
      { mediaType: MediaType.ociManifest, digest: d('1'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
      { mediaType: MediaType.ociManifest, digest: d('2'), size: 1, platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
      { mediaType: MediaType.ociManifest, digest: d('3'), size: 1, platform: { os: 'linux', architecture: 'amd64' } },
      { mediaType: MediaType.ociManifest, digest: d('4'), size: 1, platform: { os: 'windows', architecture: 'amd64' } },
      { mediaType: MediaType.ociManifest, digest: d('5'), size: 1, platform: { os: 'linux', architecture: 'arm64' } },
    ],
  };
  t.equal(chooseInstance(list, MediaType.ociIndex, { os: 'linux', arch: 'amd64' }).digest, d('3'));
  t.equal(chooseInstance(list, MediaType.ociIndex, { os: 'windows', arch: 'amd64' }).digest, d('4'));
  t.equal(chooseInstance(list, MediaType.ociIndex, { os: 'linux', arch: 'arm' }).digest, d('2'), 'arm means arm/v7');
  t.equal(chooseInstance(list, MediaType.ociIndex, { os: 'linux', arch: 'arm', variant: 'v6' }).digest, d('1'));
  t.equal(chooseInstance(list, MediaType.ociIndex, { os: 'linux', arch: 'arm64', variant: 'v8' }).digest, d('5'), 'arm64 without variant is v8');
  t.throws(() => chooseInstance(list, MediaType.dockerManifestList, { os: 'linux', arch: 'riscv64' }), /no image found in manifest list for architecture riscv64, variant "", OS linux/);
});

t.test('Docker progress messages', async (t) => {
  t.equal(humanSize(0), '0B');
  t.equal(humanSize(999), '999B');
  t.equal(humanSize(1_234_567), '1.235MB');
  t.equal(humanSize(1_000_000), '1MB');
  t.equal(progressBar(0, 0), '');
  t.equal(progressBar(500_000, 1_000_000), `[${'='.repeat(25)}>${' '.repeat(25)}]    500kB/1MB`);
  t.equal(progressBar(1_000_000, 1_000_000), `[${'='.repeat(50)}>] ` + '     1MB/1MB');
  const digest = `sha256:${'ab'.repeat(32)}`;
  t.same(dockerProgressMessage({ kind: 'new', digest, size: 10 }, 'pull'), { status: 'Pulling fs layer', progressDetail: {}, id: 'abababababab' });
  t.same(dockerProgressMessage({ kind: 'read', digest, size: 10, offset: 4 }, 'push'), {
    status: 'Pushing',
    progressDetail: { current: 4, total: 10 },
    progress: progressBar(4, 10),
    id: 'abababababab',
  });
  t.same(dockerProgressMessage({ kind: 'skipped', digest, size: 10 }, 'push'), { status: 'Layer already exists', id: 'abababababab' });
  t.equal(goJsonLine({ a: '<&>' }), '{"a":"\\u003c\\u0026\\u003e"}\n', "Go's HTML escaping");
});
