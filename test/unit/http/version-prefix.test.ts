import t from 'tap';
import type { IncomingMessage } from 'node:http';
import { compareVersions, stripVersionPrefix, type VersionedRequest } from '../../../src/http/version-prefix.js';

const req = (url: string): VersionedRequest => ({ url }) as IncomingMessage as VersionedRequest;

t.test('prefixes are stripped and remembered', async (t) => {
  const cases: [string, string, string | undefined][] = [
    ['/v4.3.1/libpod/_ping', '/libpod/_ping', '4.3.1'],
    ['/v1.41/containers/json?all=1', '/containers/json?all=1', '1.41'],
    ['/v1.0.0/libpod/info', '/libpod/info', '1.0.0'],
    ['/v1.41', '/', '1.41'],
    ['/version', '/version', undefined],
    ['/vabc/x', '/vabc/x', undefined],
    ['/_ping', '/_ping', undefined],
  ];
  for (const [url, path, version] of cases) {
    const r = req(url);
    t.equal(stripVersionPrefix(r), path, url);
    t.equal(r.apiVersion, version);
    t.equal(r.badApiVersion, undefined);
  }
});

t.test('malformed versions are flagged', async (t) => {
  for (const url of ['/v1.x/_ping', '/v1/_ping', '/v1.2.3.4/_ping', '/v1..2/_ping']) {
    const r = req(url);
    stripVersionPrefix(r);
    t.ok(r.badApiVersion, url);
  }
});

t.test('compareVersions', async (t) => {
  t.ok(compareVersions('1.41', '1.24') > 0);
  t.ok(compareVersions('1.9', '1.24') < 0);
  t.equal(compareVersions('4.3', '4.3.0'), 0);
});
