import t from 'tap';
import type { IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import {
  closeHijacked,
  decodeCompleteChunkedBody,
  hijackResponseHead,
  isHijackEndpoint,
  MULTIPLEXED_STREAM_CONTENT_TYPE,
  RAW_STREAM_CONTENT_TYPE,
  requestedUpgrade,
  writeHijackError,
} from '../../../src/stream/hijack.js';

const UPGRADED_TCP =
  'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n';
const PLAIN_OK = 'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.raw-stream\r\n\r\n';

t.test('requestedUpgrade needs the upgrade token in Connection and a non-empty Upgrade', async (t) => {
  t.equal(requestedUpgrade({ connection: 'Upgrade', upgrade: 'tcp' }), 'tcp');
  t.equal(requestedUpgrade({ connection: 'upgrade', upgrade: 'tcp' }), 'tcp');
  t.equal(requestedUpgrade({ connection: 'UPGRADE', upgrade: 'TCP' }), 'TCP', 'echoed as sent');
  t.equal(requestedUpgrade({ connection: 'keep-alive, Upgrade', upgrade: 'tcp' }), 'tcp', 'token list');
  t.equal(requestedUpgrade({ connection: ' Upgrade ', upgrade: 'h2c' }), 'h2c');
  t.equal(requestedUpgrade({ connection: 'Upgrade', upgrade: '' }), undefined);
  t.equal(requestedUpgrade({ connection: 'Upgrade', upgrade: '   ' }), undefined);
  t.equal(requestedUpgrade({ connection: 'Upgrade' }), undefined);
  t.equal(requestedUpgrade({ upgrade: 'tcp' }), undefined);
  t.equal(requestedUpgrade({ connection: 'keep-alive', upgrade: 'tcp' }), undefined);
  t.equal(requestedUpgrade({ connection: 'upgraded', upgrade: 'tcp' }), undefined, 'whole token only');
  t.equal(requestedUpgrade({ connection: 'Upgrade', upgrade: 'tcp\r\nX: y' }), 'tcpX: y', 'no header injection');
});

t.test('hijackResponseHead reproduces Podman byte for byte', async (t) => {
  t.same(hijackResponseHead({ connection: 'Upgrade', upgrade: 'tcp' }), { head: UPGRADED_TCP, upgraded: true });
  t.same(hijackResponseHead({}), { head: PLAIN_OK, upgraded: false });
  t.same(hijackResponseHead({ connection: 'close' }), { head: PLAIN_OK, upgraded: false });
  t.same(hijackResponseHead({ upgrade: 'tcp' }), { head: PLAIN_OK, upgraded: false }, 'Upgrade alone is not enough');
  t.equal(
    hijackResponseHead({ connection: 'Upgrade', upgrade: 'websocket' }).head,
    'HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
  );
  t.equal(RAW_STREAM_CONTENT_TYPE, 'application/vnd.docker.raw-stream');
});

t.test('hijackResponseHead takes the content type as a parameter', async (t) => {
  t.equal(
    hijackResponseHead({}, MULTIPLEXED_STREAM_CONTENT_TYPE).head,
    'HTTP/1.1 200 OK\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\n\r\n',
  );
  t.match(hijackResponseHead({ connection: 'Upgrade', upgrade: 'tcp' }, MULTIPLEXED_STREAM_CONTENT_TYPE).head, /^HTTP\/1\.1 101 UPGRADED\r\nContent-Type: application\/vnd\.docker\.multiplexed-stream\r\n/);
  t.throws(() => hijackResponseHead({}, 'text/plain\r\nX-Evil: 1'), TypeError);
  t.throws(() => hijackResponseHead({}, 'text/plain\n'), TypeError);
  t.equal(hijackResponseHead({}, 'text/plain').head, 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n', 'validation is not stateful');
});

t.test('isHijackEndpoint selects attach and exec start, compat and libpod, any version', async (t) => {
  const req = (method: string, url: string): IncomingMessage => ({ method, url }) as IncomingMessage;
  const yes = [
    '/containers/abc/attach',
    '/containers/abc/attach?stream=1&stdin=1',
    '/v1.41/containers/abc/attach?stream=1',
    '/v4.3.1/libpod/containers/my%2Fname/attach?detachKeys=ctrl-p%2Cctrl-q',
    '/libpod/containers/abc/attach',
    '/exec/0123abc/start',
    '/v1.24/exec/0123abc/start',
    '/v4.0.0/libpod/exec/0123abc/start',
    '/containers/abc/attach/',
  ];
  for (const url of yes) t.ok(isHijackEndpoint(req('POST', url)), url);
  const no: Array<[string, string]> = [
    ['GET', '/containers/abc/attach'],
    ['GET', '/containers/abc/attach/ws'],
    ['POST', '/containers/abc/attach/ws'],
    ['POST', '/containers/abc/start'],
    ['POST', '/exec/abc/resize'],
    ['POST', '/containers/abc/exec'],
    ['POST', '/v4.3.1/libpod/containers/create'],
    ['POST', '/containers/attach'],
    ['POST', '/foo/containers/abc/attach'],
    ['POST', '/containers/a/b/attach'],
  ];
  for (const [method, url] of no) t.notOk(isHijackEndpoint(req(method, url)), `${method} ${url}`);
  t.notOk(isHijackEndpoint({ method: 'POST' } as IncomingMessage), 'no url');
});

t.test('decodeCompleteChunkedBody', async (t) => {
  const decode = (s: string, limit?: number): { body: string; rest: string } | null => {
    const r = decodeCompleteChunkedBody(Buffer.from(s, 'latin1'), limit);
    return r && { body: r.body.toString('latin1'), rest: r.rest.toString('latin1') };
  };
  t.same(decode('0\r\n\r\n'), { body: '', rest: '' }, 'dockerode empty body');
  t.same(decode('0\r\n\r\nstdin'), { body: '', rest: 'stdin' });
  t.same(decode('4\r\nWiki\r\n5\r\npedia\r\n0\r\n\r\n'), { body: 'Wikipedia', rest: '' });
  t.same(decode('a;ext=1\r\n0123456789\r\n0\r\n\r\nXY'), { body: '0123456789', rest: 'XY' }, 'extensions, hex size');
  t.same(decode('2\r\nab\r\n0\r\nTrailer: x\r\n\r\nrest'), { body: 'ab', rest: 'rest' }, 'trailers');
  t.same(decode('A\r\n0123456789\r\n0\r\n\r\n'), { body: '0123456789', rest: '' }, 'upper-case hex');
  t.equal(decode(''), null, 'nothing yet');
  t.equal(decode('0\r\n'), null, 'no final CRLF');
  t.equal(decode('4\r\nWik'), null, 'partial chunk');
  t.equal(decode('4\r\nWiki'), null, 'missing chunk CRLF');
  t.equal(decode('4\r\nWikiXX0\r\n\r\n'), null, 'bad chunk terminator');
  t.equal(decode('zz\r\n'), null, 'bad size');
  t.equal(decode('hello world'), null, 'raw stdin is not a chunked body');
  t.equal(decode('4\r\nWiki\r\n0\r\n\r\n', 3), null, 'over the limit');
});

function fakeSocket(): { socket: PassThrough; written: () => Buffer } {
  const socket = new PassThrough();
  const parts: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => parts.push(chunk));
  return { socket, written: () => Buffer.concat(parts) };
}

t.test('writeHijackError writes Podman\'s error line raw, then closes', async (t) => {
  const { socket, written } = fakeSocket();
  await writeHijackError(socket, 'detached from container', false);
  t.equal(written().toString(), 'Error: detached from container\n');
  t.ok(socket.destroyed);
});

t.test('writeHijackError frames the error on stream 2 when multiplexed', async (t) => {
  const { socket, written } = fakeSocket();
  await writeHijackError(socket, 'boom', true);
  const bytes = written();
  t.same([...bytes.subarray(0, 8)], [2, 0, 0, 0, 0, 0, 0, 12]);
  t.equal(bytes.subarray(8).toString(), 'Error: boom\n');
});

t.test('writeHijackError and closeHijacked cope with ended and destroyed sockets', async (t) => {
  const ended = fakeSocket();
  ended.socket.end('bye');
  await writeHijackError(ended.socket, 'late', false);
  t.equal(ended.written().toString(), 'bye', 'nothing written after end');
  t.ok(ended.socket.destroyed);

  const destroyed = new PassThrough();
  destroyed.destroy();
  await writeHijackError(destroyed, 'x', true);
  await closeHijacked(destroyed);
  t.pass('resolves at once');

  const finished = fakeSocket();
  finished.socket.end();
  await new Promise((resolve) => finished.socket.once('finish', resolve));
  await closeHijacked(finished.socket);
  t.ok(finished.socket.destroyed);
});
