/**
 * The Dockerfile cannot be built here (no engine, no registry) and hadolint cannot be installed (neither Debian 12
 * nor npm ships it), so this checks the hadolint rules that apply to it, and that its install steps are the
 * project's own scripts, which the README's commands exercise.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

interface Instruction {
  line: number;
  op: string;
  args: string;
  /** `# hadolint ignore=` rules given on the comment lines just above. */
  ignored: string[];
}

/** Instructions with continuation lines joined; comments kept only as hadolint ignore pragmas. */
function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: string[] = [];
  let current: { line: number; text: string } | undefined;
  text.split('\n').forEach((raw, index) => {
    const line = raw.trimEnd();
    if (current === undefined) {
      if (line.trim() === '') return;
      const pragma = /^#\s*hadolint\s+ignore=(.+)$/.exec(line.trim());
      if (pragma) pending.push(...pragma[1]!.split(',').map((r) => r.trim()));
      if (line.trimStart().startsWith('#')) return;
      current = { line: index + 1, text: '' };
    } else if (line.trimStart().startsWith('#')) {
      return;
    }
    current.text += (current.text ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      const [op, ...rest] = current.text.split(/\s+/);
      out.push({ line: current.line, op: op!.toUpperCase(), args: rest.join(' '), ignored: pending });
      current = undefined;
      pending = [];
    }
  });
  return out;
}

const config = readFileSync(join(REPO, '.hadolint.yaml'), 'utf8');
const globallyIgnored = [...config.matchAll(/^\s*-\s*(DL\d{4}|SC\d{4})/gm)].map((m) => m[1]!);

/** The hadolint rules that matter for a Dockerfile like ours; returns the violations, rule first. */
function lint(text: string, ignoredRules: string[]): string[] {
  const instructions = parseDockerfile(text);
  const violations: string[] = [];
  const check = (ins: Instruction, rule: string, bad: boolean, what: string): void => {
    if (bad && !ins.ignored.includes(rule) && !ignoredRules.includes(rule)) violations.push(`${rule} line ${ins.line}: ${what}`);
  };
  const stages = new Set<string>();
  let shellHasPipefail = false;
  for (const ins of instructions) {
    switch (ins.op) {
      case 'FROM': {
        const [image, as, name] = ins.args.split(/\s+/);
        check(ins, 'DL3006', !image!.includes(':') && !image!.includes('@') && !stages.has(image!), 'always tag the image version');
        check(ins, 'DL3007', /:latest$/.test(image!), 'do not use :latest');
        if (as?.toUpperCase() === 'AS' && name) {
          check(ins, 'DL3024', stages.has(name), 'stage names must be unique');
          stages.add(name);
        }
        shellHasPipefail = false;
        break;
      }
      case 'SHELL':
        shellHasPipefail = /pipefail/.test(ins.args);
        break;
      case 'RUN': {
        const cmd = ins.args;
        check(ins, 'DL3003', /(^|&&|;)\s*cd\s/.test(cmd), 'use WORKDIR to switch directories');
        check(ins, 'DL3004', /\bsudo\b/.test(cmd), 'do not use sudo');
        check(ins, 'DL3027', /(^|&&|;)\s*apt\s/.test(cmd), 'use apt-get, not apt');
        check(ins, 'DL4006', /\|/.test(cmd.replace(/\|\|/g, '')) && !shellHasPipefail, 'set -o pipefail before RUN with a pipe');
        if (/apt-get\s+(-\S+\s+)*install/.test(cmd)) {
          check(ins, 'DL3014', !/\s-y\b|--yes|--assume-yes/.test(cmd), 'apt-get install needs -y');
          check(ins, 'DL3015', !/--no-install-recommends/.test(cmd), 'apt-get install needs --no-install-recommends');
          check(ins, 'DL3009', !/rm -rf \/var\/lib\/apt\/lists/.test(cmd), 'delete the apt lists after installing');
          check(ins, 'DL3008', !/install[^&;]*\s[a-z0-9][a-z0-9.+-]*=\S/.test(cmd), 'pin versions in apt-get install');
        }
        if (/apt-get\s+update/.test(cmd)) check(ins, 'DL3009', !/rm -rf \/var\/lib\/apt\/lists/.test(cmd), 'delete the apt lists after update');
        check(ins, 'DL3016', /npm\s+(i|install)\s+(-g\s+)?[a-z@]/.test(cmd) && !/@\d/.test(cmd), 'pin versions in npm install');
        break;
      }
      case 'WORKDIR':
        check(ins, 'DL3000', !ins.args.startsWith('/'), 'use absolute WORKDIR');
        break;
      case 'CMD':
      case 'ENTRYPOINT':
        check(ins, 'DL3025', !ins.args.startsWith('['), 'use JSON notation for CMD and ENTRYPOINT');
        break;
      case 'COPY': {
        const from = /--from=(\S+)/.exec(ins.args)?.[1];
        if (from !== undefined) check(ins, 'DL3022', !stages.has(from), `COPY --from must name an earlier stage (${from})`);
        else {
          const sources = ins.args.split(/\s+/).filter((a) => !a.startsWith('--')).slice(0, -1);
          for (const src of sources) check(ins, 'DL3021', !existsSync(join(REPO, src)), `COPY source ${src} does not exist in the repository`);
        }
        break;
      }
      case 'ADD':
        check(ins, 'DL3020', true, 'use COPY instead of ADD for files and folders');
        break;
      case 'MAINTAINER':
        check(ins, 'DL4000', true, 'MAINTAINER is deprecated');
        break;
    }
  }
  if (instructions.filter((i) => i.op === 'ENTRYPOINT').length > 1) violations.push('DL4004: several ENTRYPOINTs');
  if (instructions.filter((i) => i.op === 'CMD').length > 1) violations.push('DL4003: several CMDs');
  return violations;
}

t.test('the Dockerfile keeps the hadolint rules that apply to it', async (t) => {
  t.same(lint(readFileSync(join(REPO, 'Dockerfile'), 'utf8'), globallyIgnored), [], 'no rule broken');
});

t.test('the rule check catches what hadolint would', async (t) => {
  const bad = [
    'FROM debian',
    'FROM node:latest AS build',
    'WORKDIR app',
    'RUN cd /tmp && apt-get update && apt-get install curl',
    'RUN curl -s x | sh',
    'ADD . /app',
    'COPY --from=nowhere /a /b',
    'COPY no-such-dir /x',
    'CMD node app.js',
    'CMD ["x"]',
  ].join('\n');
  const rules = lint(bad, []).map((v) => v.split(/[ :]/)[0]);
  for (const rule of ['DL3006', 'DL3007', 'DL3000', 'DL3003', 'DL3014', 'DL3015', 'DL3009', 'DL4006', 'DL3020', 'DL3022', 'DL3021', 'DL3025', 'DL4003']) {
    t.ok(rules.includes(rule), rule);
  }
  t.same(lint('FROM node:20-bookworm-slim\n# hadolint ignore=DL3004\nRUN sudo true', []), [], 'inline ignore pragmas are honoured');
});


t.test('a multi-stage build on Debian 12 whose install steps are the project scripts', async (t) => {
  const instructions = parseDockerfile(readFileSync(join(REPO, 'Dockerfile'), 'utf8'));
  const froms = instructions.filter((i) => i.op === 'FROM');
  t.ok(froms.length >= 2, 'multi-stage');
  for (const from of froms) t.match(from.args, /^node:20-bookworm/, 'Node 20 on Debian 12 (bookworm)');
  const stageRuns = (index: number): string =>
    instructions
      .slice(instructions.indexOf(froms[index]!), index + 1 < froms.length ? instructions.indexOf(froms[index + 1]!) : undefined)
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join('\n');
  t.match(stageRuns(0), /scripts\/setup\.sh/, 'the build stage installs and builds with scripts/setup.sh');
  t.match(stageRuns(froms.length - 1), /scripts\/setup\.sh/, 'the runtime stage installs runc, conmon, ... with scripts/setup.sh');
  t.match(stageRuns(froms.length - 1), /systemd\/install\.sh/, 'the podserve command comes from systemd/install.sh, as on a host');
  t.match(stageRuns(froms.length - 1), /npm prune --omit=dev/, 'development packages dropped from the image');
  const entry = instructions.find((i) => i.op === 'ENTRYPOINT')!;
  t.same(JSON.parse(entry.args), ['/usr/local/bin/podserve']);
  const cmd = JSON.parse(instructions.find((i) => i.op === 'CMD')!.args) as string[];
  t.ok(cmd.includes('service') && cmd.includes('unix:///run/podserve/podserve.sock'), 'serves on the socket meant for a host volume');
  t.ok(existsSync(join(REPO, 'scripts/setup.sh')) && existsSync(join(REPO, 'systemd/install.sh')), 'the scripts it runs exist');
});
