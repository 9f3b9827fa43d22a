// Chart definitions as data. A job gets one "unit state" chart per unit type that has units, with
// one dimension per unit; adding a unit type is a new row in plugin/units/types.ts, not new code.

import { STATE_LEGEND } from '../plugin/units/states.js';
import { UNIT_TYPES } from '../plugin/units/types.js';
import { MODULE_NAME, PLUGIN_NAME, type PerUnitChartDef, type TemplateValues } from './shape.js';

export interface UnitStateChartKind {
  /** systemd's unit type, the suffix of the unit name. */
  readonly unitType: string;
  /** Human name used in the title. */
  readonly label: string;
  /** Dashboard order within the plugin's charts. */
  readonly priority: number;
}

/** Unit types in dashboard order, each with its charts' place (the per-type charts add to it). */
export const UNIT_STATE_CHARTS: readonly UnitStateChartKind[] = UNIT_TYPES.map((t, i) => ({ unitType: t.unitType, label: t.label, priority: 70000 + i }));

/** A unit state chart: one dimension per unit (value 1..5), `{type}` stands for the unit type. */
export const UNIT_STATE_CHART: PerUnitChartDef & {
  readonly failedLabel: string;
  readonly summaryLabel: string;
  readonly adviceLabel: string;
  readonly failedVariable: string;
  readonly legend: string;
} = {
  id: '{type}_unit_state',
  context: '{prefix}.{type}_unit_state',
  family: '{type}',
  title: `{label} Unit State (${STATE_LEGEND})`,
  units: 'state',
  chartType: 'line',
  priority: 0,
  dimensions: [],
  dimensionAlgorithm: 'absolute',
  /** The chart label naming the failed units and systemd's reason, for the alarm's text. */
  failedLabel: 'failed_units',
  /**
   * The alarm's words: `failed: <failed_units>` while any is failed, then `recovered: <units>` (what
   * a CLEAR notification names), and what to do in each case.
   */
  summaryLabel: 'failure_summary',
  adviceLabel: 'failure_advice',
  labels: ['failed_units', 'failure_summary', 'failure_advice'],
  /** The chart variable the alarm reads: how many units the sample reports failed. */
  failedVariable: 'failed_units',
  variables: ['failed_units'],
  legend: STATE_LEGEND,
  plugin: PLUGIN_NAME,
  module: MODULE_NAME,
};

export function unitStateChartKind(unitType: string): UnitStateChartKind | undefined {
  return UNIT_STATE_CHARTS.find((k) => k.unitType === unitType);
}

/** What `{type}` and `{label}` stand for in the charts of a unit type. */
export function kindValues(kind: UnitStateChartKind): TemplateValues {
  return { type: kind.unitType, label: kind.label };
}
