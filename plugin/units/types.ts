// systemd's unit types, the suffix of a unit name, in dashboard order, with the word a title uses
// and whether the type's D-Bus interface carries a Result. The one list: the charts
// (charts/unit-state.ts), the config's check of include patterns and the Result reads use it.

export interface UnitTypeInfo {
  readonly unitType: string;
  /** Human name used in titles. */
  readonly label: string;
  /** Its interface (`org.freedesktop.systemd1.Socket`…) has `Result` (why it last stopped or failed). */
  readonly hasResult: boolean;
}

export const UNIT_TYPES: readonly UnitTypeInfo[] = [
  { unitType: 'service', label: 'Service', hasResult: true },
  { unitType: 'socket', label: 'Socket', hasResult: true },
  { unitType: 'target', label: 'Target', hasResult: false },
  { unitType: 'path', label: 'Path', hasResult: true },
  { unitType: 'device', label: 'Device', hasResult: false },
  { unitType: 'mount', label: 'Mount', hasResult: true },
  { unitType: 'automount', label: 'Automount', hasResult: true },
  { unitType: 'swap', label: 'Swap', hasResult: true },
  { unitType: 'timer', label: 'Timer', hasResult: true },
  { unitType: 'scope', label: 'Scope', hasResult: true },
  { unitType: 'slice', label: 'Slice', hasResult: false },
];

export const UNIT_TYPE_NAMES: readonly string[] = UNIT_TYPES.map((t) => t.unitType);

export function unitTypeInfo(unitType: string): UnitTypeInfo | undefined {
  return UNIT_TYPES.find((t) => t.unitType === unitType);
}
