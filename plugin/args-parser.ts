// The command-line parser (yargs), needed only once at start-up. The bundle evaluates it anew from
// its source text on each call (scripts/build/build.mjs, RELEASED), so that it is garbage once the
// arguments are read rather than kept for as long as the plugin runs (~0.9 MB).
// Tests and tsx run this file as it is.

import yargs from 'yargs';

export type Yargs = typeof yargs;

export function loadYargs(): Yargs {
  return yargs;
}
