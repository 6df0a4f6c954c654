import t from 'tap';
import {
  formatReference,
  isShortName,
  lookupCandidates,
  normalizeName,
  parseNormalizedNamed,
  parseReference,
  splitRepoTag,
} from '../../../src/image/reference.js';

t.test('parseReference splits domain, path, tag and digest without normalising', async (t) => {
  t.same(parseReference('busybox'), { domain: '', path: 'busybox' });
  t.same(parseReference('busybox:1.36'), { domain: '', path: 'busybox', tag: '1.36' });
  t.same(parseReference('quay.io/foo/bar:v1'), { domain: 'quay.io', path: 'foo/bar', tag: 'v1' });
  t.same(parseReference('localhost:5000/x'), { domain: 'localhost:5000', path: 'x' });
  // Like distribution's Parse: a first component followed by "/" is taken as the domain.
  t.same(parseReference('library/busybox'), { domain: 'library', path: 'busybox' });
  const d = `sha256:${'a'.repeat(64)}`;
  t.same(parseReference(`busybox:latest@${d}`), { domain: '', path: 'busybox', tag: 'latest', digest: d });
  t.equal(formatReference(parseReference(`docker.io/library/busybox:1@${d}`)), `docker.io/library/busybox:1@${d}`);
});

t.test('parseReference refuses malformed references', async (t) => {
  t.throws(() => parseReference(''), /at least one component/);
  t.throws(() => parseReference('BusyBox'), /must be lowercase/);
  t.throws(() => parseReference('a b'), /invalid reference format/);
  t.throws(() => parseReference('busybox@sha256:abc'), /invalid reference format/);
  t.throws(() => parseReference(`busybox@sha256:${'a'.repeat(63)}`), /invalid/);
  t.throws(() => parseReference(`${'a'.repeat(256)}`), /255 characters/);
});

t.test('Docker normalisation (ParseNormalizedNamed)', async (t) => {
  const n = (s: string): string => formatReference(parseNormalizedNamed(s));
  t.equal(n('busybox'), 'docker.io/library/busybox');
  t.equal(n('busybox:1'), 'docker.io/library/busybox:1');
  t.equal(n('foo/bar'), 'docker.io/foo/bar');
  t.equal(n('index.docker.io/busybox'), 'docker.io/library/busybox');
  t.equal(n('localhost/busybox'), 'localhost/busybox');
  t.equal(n('quay.io/a/b:c'), 'quay.io/a/b:c');
  t.throws(() => parseNormalizedNamed('a'.repeat(64)), /64-byte hexadecimal/);
  t.throws(() => parseNormalizedNamed('Foo/bar'), /lowercase/);
});

t.test('Podman normalisation of stored names (NormalizeName)', async (t) => {
  t.equal(normalizeName('busybox'), 'localhost/busybox:latest');
  t.equal(normalizeName('busybox:1.36'), 'localhost/busybox:1.36');
  t.equal(normalizeName('library/busybox'), 'localhost/library/busybox:latest');
  t.equal(normalizeName('foo/bar:1'), 'localhost/foo/bar:1');
  t.equal(normalizeName('docker.io/busybox'), 'docker.io/library/busybox:latest');
  t.equal(normalizeName('quay.io/foo/bar'), 'quay.io/foo/bar:latest');
  t.equal(normalizeName('localhost:5000/x:y'), 'localhost:5000/x:y');
  const d = `sha256:${'b'.repeat(64)}`;
  t.equal(normalizeName(`quay.io/foo/bar:1@${d}`), `quay.io/foo/bar@${d}`, 'tag dropped when digested');
  t.throws(() => normalizeName('UPPER'));
});

t.test('lookup candidates: localhost and search registries first, then Docker Hub', async (t) => {
  t.same(lookupCandidates('busybox'), ['localhost/busybox:latest', 'docker.io/library/busybox:latest']);
  t.same(lookupCandidates('busybox:1.36', ['quay.io']), [
    'localhost/busybox:1.36',
    'quay.io/busybox:1.36',
    'docker.io/library/busybox:1.36',
  ]);
  t.same(lookupCandidates('quay.io/foo/bar'), ['quay.io/foo/bar:latest']);
  t.same(lookupCandidates('docker.io/busybox'), ['docker.io/library/busybox:latest']);
  t.same(lookupCandidates('localhost/busybox'), ['localhost/busybox:latest']);
  t.ok(isShortName('busybox'));
  t.ok(isShortName('foo/bar:1'));
  t.notOk(isShortName('quay.io/foo'));
  t.notOk(isShortName('localhost/foo'));
  t.same(splitRepoTag('localhost/busybox:latest'), { repo: 'localhost/busybox', tag: 'latest' });
  t.same(splitRepoTag(`localhost/busybox@sha256:${'c'.repeat(64)}`), { repo: 'localhost/busybox', tag: '<none>' });
});
