import { randomBytes, randomInt } from 'node:crypto';

/** 64 hex digits, like Podman's container and exec session ids. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

const ADJECTIVES = [
  'amber', 'bold', 'brisk', 'calm', 'clever', 'cosmic', 'crisp', 'daring', 'eager', 'fancy', 'gentle', 'happy',
  'hardy', 'jolly', 'keen', 'lively', 'lucid', 'merry', 'nimble', 'noble', 'patient', 'proud', 'quiet', 'rapid',
  'serene', 'sharp', 'steady', 'sunny', 'swift', 'tender', 'vivid', 'witty', 'zealous', 'agile', 'bright', 'cheerful',
];
const NOUNS = [
  'albatross', 'badger', 'beaver', 'bison', 'caribou', 'condor', 'coyote', 'dolphin', 'falcon', 'ferret', 'gecko',
  'heron', 'ibex', 'jaguar', 'kestrel', 'lemur', 'lynx', 'marmot', 'narwhal', 'ocelot', 'otter', 'panda', 'puffin',
  'quokka', 'raven', 'salmon', 'sparrow', 'tapir', 'toucan', 'walrus', 'wombat', 'yak', 'zebra', 'osprey', 'pelican',
];

/** A random adjective_noun name, as Podman gives unnamed containers. */
export function randomName(): string {
  return `${ADJECTIVES[randomInt(ADJECTIVES.length)]}_${NOUNS[randomInt(NOUNS.length)]}`;
}

/** Podman's rule for container names. */
export const NAME_PATTERN = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
