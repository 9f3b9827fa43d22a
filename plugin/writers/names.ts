// How units are named on the charts (dimension names, label text).

import { safeWord } from '../netdata/protocol.js';
import { readableUnitName } from '../units/names.js';

/** The readable unit name (see readableUnitName: unique per unit), with nothing the agent cannot carry. */
export function dimensionName(unitName: string): string {
  return safeWord(readableUnitName(unitName));
}

/**
 * The name of a per-connection group's dimension (`foo@*.service`): the parts rendered as unit
 * names, the `*` kept (a unit's own name shows a `*` as `/[2a]`, so the two never meet).
 */
export function groupDimensionName(key: string): string {
  return key.split('*').map(dimensionName).join('*');
}
