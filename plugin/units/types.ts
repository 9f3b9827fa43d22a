// systemd's unit types, the suffix of a unit name, in dashboard order, with the word a title uses.
// The one list: the charts (charts/unit-state.ts) and the config's check of include patterns read it.

export interface UnitTypeInfo {
  readonly unitType: string;
  /** Human name used in titles. */
  readonly label: string;
}

export const UNIT_TYPES: readonly UnitTypeInfo[] = [
  { unitType: 'service', label: 'Service' },
  { unitType: 'socket', label: 'Socket' },
  { unitType: 'target', label: 'Target' },
  { unitType: 'path', label: 'Path' },
  { unitType: 'device', label: 'Device' },
  { unitType: 'mount', label: 'Mount' },
  { unitType: 'automount', label: 'Automount' },
  { unitType: 'swap', label: 'Swap' },
  { unitType: 'timer', label: 'Timer' },
  { unitType: 'scope', label: 'Scope' },
  { unitType: 'slice', label: 'Slice' },
];

export const UNIT_TYPE_NAMES: readonly string[] = UNIT_TYPES.map((t) => t.unitType);
