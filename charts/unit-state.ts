// Chart definitions as data. A job gets one "unit state" chart per unit type that has units;
// adding a unit type is a new row here, not new code.

import { STATE_LEGEND } from '../plugin/units/states.js';

export interface UnitStateChartKind {
  /** systemd's unit type, the suffix of the unit name. */
  readonly unitType: string;
  /** Human name used in the title. */
  readonly label: string;
  /** Dashboard order within the plugin's charts. */
  readonly priority: number;
}

/** Unit types in dashboard order. Types not listed here (slices, scopes, devices) are not charted. */
export const UNIT_STATE_CHARTS: readonly UnitStateChartKind[] = [
  { unitType: 'service', label: 'Service', priority: 70000 },
  { unitType: 'socket', label: 'Socket', priority: 70001 },
  { unitType: 'target', label: 'Target', priority: 70002 },
  { unitType: 'path', label: 'Path', priority: 70003 },
  { unitType: 'device', label: 'Device', priority: 70004 },
  { unitType: 'mount', label: 'Mount', priority: 70005 },
  { unitType: 'automount', label: 'Automount', priority: 70006 },
  { unitType: 'swap', label: 'Swap', priority: 70007 },
  { unitType: 'timer', label: 'Timer', priority: 70008 },
  { unitType: 'scope', label: 'Scope', priority: 70009 },
  { unitType: 'slice', label: 'Slice', priority: 70010 },
];

/** The fixed parts of every unit state chart; `{type}` stands for the unit type. */
export const UNIT_STATE_CHART = {
  id: '{type}_unit_state',
  context: 'systemd.{type}_unit_state',
  family: '{type}',
  title: '{label} Unit State ({legend})',
  units: 'state',
  chartType: 'line',
  dimensionAlgorithm: 'absolute',
  /** The chart variable the alarm reads: how many units the sample reports failed. */
  failedVariable: 'failed_units',
  /** The chart label naming the failed units and systemd's reason, for the alarm's text. */
  failedLabel: 'failed_units',
  /**
   * The alarm's words: `failed: <failed_units>` while any is failed, then `recovered: <units>` (what
   * a CLEAR notification names), and what to do in each case.
   */
  summaryLabel: 'failure_summary',
  adviceLabel: 'failure_advice',
  legend: STATE_LEGEND,
  plugin: 'systemdunits.plugin',
  module: 'systemdunits',
} as const;

export function unitStateChartKind(unitType: string): UnitStateChartKind | undefined {
  return UNIT_STATE_CHARTS.find((k) => k.unitType === unitType);
}

export function fill(template: string, kind: UnitStateChartKind): string {
  return template.replaceAll('{type}', kind.unitType).replaceAll('{label}', kind.label).replaceAll('{legend}', STATE_LEGEND);
}
