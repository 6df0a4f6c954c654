import t from 'tap';
import { BadRequestError } from '../../../src/errors.js';
import { applyChanges, parseSignal } from '../../../src/image/changes.js';

t.test('JSON and shell forms of CMD and ENTRYPOINT', async (t) => {
  t.same(applyChanges({}, ['CMD ["/bin/sh","-c","echo hi"]']).Cmd, ['/bin/sh', '-c', 'echo hi']);
  t.same(applyChanges({}, ['CMD echo hi']).Cmd, ['/bin/sh', '-c', 'echo hi']);
  t.same(applyChanges({}, ['ENTRYPOINT ["/bin/busybox"]']).Entrypoint, ['/bin/busybox']);
  t.same(applyChanges({}, ['ENTRYPOINT top -b']).Entrypoint, ['/bin/sh', '-c', 'top -b']);
  t.same(applyChanges({}, ['ENTRYPOINT ']).Entrypoint, [], 'empty shell form clears the entrypoint');
  t.same(applyChanges({}, ['CMD=["a"]']).Cmd, ['a'], '"KEY=VALUE" accepted when there is no space');
});

t.test('ENV, LABEL, EXPOSE, VOLUME, WORKDIR, USER, STOPSIGNAL, ONBUILD', async (t) => {
  const c = applyChanges({ Env: ['PATH=/bin'] }, [
    'ENV FOO=bar',
    'env "QUOTED"="x y"',
    'ENV EMPTY',
    'LABEL a=b',
    'LABEL "k"="v w"',
    'EXPOSE 8080',
    'EXPOSE 53/UDP',
    'VOLUME /data /cache',
    'VOLUME ["/json"]',
    'WORKDIR /srv',
    'WORKDIR app',
    'USER nobody',
    'STOPSIGNAL SIGINT',
    'ONBUILD RUN true',
  ]);
  t.same(c.Env, ['PATH=/bin', 'FOO=bar', 'QUOTED=x y', 'EMPTY=']);
  t.same(c.Labels, { a: 'b', k: 'v w' });
  t.same(c.ExposedPorts, { '8080/tcp': {}, '53/udp': {} });
  t.same(c.Volumes, { '/data': {}, '/cache': {}, '/json': {} });
  t.equal(c.WorkingDir, '/srv/app');
  t.equal(c.User, 'nobody');
  t.equal(c.StopSignal, '2');
  t.same(c.OnBuild, ['RUN true']);
});

t.test('the base config is not modified', async (t) => {
  const base = { Env: ['A=1'] };
  applyChanges(base, ['ENV B=2']);
  t.same(base, { Env: ['A=1'] });
});

t.test('invalid changes are 400s that say what is wrong', async (t) => {
  const bad = (change: string, re: RegExp): void => {
    t.throws(() => applyChanges({}, [change]), re, change);
    t.throws(() => applyChanges({}, [change]), BadRequestError);
  };
  bad('NOSPACE', /must be formatted as KEY VALUE/);
  bad('FROM busybox', /invalid instruction FROM/);
  bad('EXPOSE 70000', /valid port number/);
  bad('EXPOSE 80/sctp', /TCP or UDP/);
  bad('EXPOSE http', /must be an integer/);
  bad('LABEL novalue', /key=value/);
  bad('USER ', /must be formatted|must provide a value/);
  bad('STOPSIGNAL SIGNOPE', /valid signal/);
  bad('WORKDIR  ', /must be formatted|non-empty WORKDIR/);
});

t.test('signal parsing', async (t) => {
  t.equal(parseSignal('TERM'), 15);
  t.equal(parseSignal('sigkill'), 9);
  t.equal(parseSignal('10'), 10);
  t.equal(parseSignal('RTMIN+3'), 37);
  t.equal(parseSignal('SIGRTMAX'), 64);
  t.throws(() => parseSignal('0'));
  t.throws(() => parseSignal('BOGUS'));
});
