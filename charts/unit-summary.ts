// Chart definitions as data: the per-unit-type summaries each job writes next to its unit state
// chart, with a fixed set of dimensions. `{type}` and `{label}` are a unit type's (charts/unit-state.ts),
// so the same unit types get them, in the same family (the unit type) on the dashboard.

import { MODULE_NAME, PLUGIN_NAME, type ChartDef } from './shape.js';

/**
 * How many units of the type are in each state in this sample; a unit that entered failed since
 * the previous sample counts as failed, as on the state chart. Stacked: the top is the unit count.
 */
export const UNIT_COUNTS_CHART: ChartDef = {
  id: '{type}_units_by_state',
  context: 'systemd.{type}_units_by_state',
  family: '{type}',
  title: '{label} Units by State',
  units: 'units',
  chartType: 'stacked',
  /** After the type's state chart. */
  priority: 100,
  // Order = the state values 1..5, so dimension i+1 is StateValue i+1.
  dimensions: [
    { id: 'active', name: 'active', algorithm: 'absolute' },
    { id: 'inactive', name: 'inactive', algorithm: 'absolute' },
    { id: 'activating', name: 'activating', algorithm: 'absolute' },
    { id: 'deactivating', name: 'deactivating', algorithm: 'absolute' },
    { id: 'failed', name: 'failed', algorithm: 'absolute' },
  ],
  dimensionAlgorithm: 'absolute',
  labels: [],
  variables: [],
  plugin: PLUGIN_NAME,
  module: MODULE_NAME,
};

/**
 * ActiveState changes of the type's units during the sample's interval, as systemd signalled them
 * (so changes between two samples count too), per interval rather than per second.
 */
export const UNIT_TRANSITIONS_CHART: ChartDef & {
  readonly changedLabel: string;
  readonly thresholdVariable: string;
  readonly windowVariable: string;
  readonly windowSeconds: number;
} = {
  id: '{type}_unit_state_transitions',
  context: 'systemd.{type}_unit_state_transitions',
  family: '{type}',
  title: '{label} Unit State Transitions',
  units: 'transitions',
  chartType: 'line',
  priority: 200,
  dimensions: [{ id: 'transitions', name: 'transitions', algorithm: 'absolute' }],
  dimensionAlgorithm: 'absolute',
  /** Chart label: units that changed state in the latest interval that had changes. */
  changedLabel: 'changed_units',
  labels: ['changed_units'],
  /** Chart variable: the job's flapping_threshold, which the flapping alarm compares against. */
  thresholdVariable: 'flapping_threshold',
  /**
   * Chart variable: changes in the last `windowSeconds`, which the flapping alarm reads. Kept by
   * the plugin rather than a `lookup: sum -5m`, which agents do not evaluate until the chart has
   * 5 minutes of data (and which would interpolate).
   */
  windowVariable: 'transitions_5m',
  variables: ['flapping_threshold', 'transitions_5m'],
  windowSeconds: 300,
  plugin: PLUGIN_NAME,
  module: MODULE_NAME,
};

/**
 * Restarts systemd made of the job's services (Restart=) during the sample's interval, counted from
 * the NRestarts it signals (so restarts between two samples count too). One line per job, not one
 * dimension per service: at 10,000 units a dimension each would be unreadable, and the question at
 * 3 a.m. is "which service is looping", which the label answers (the services with most restarts in
 * the window, with why each last crashed); the chart shows when and how hard.
 */
export const UNIT_RESTARTS_CHART: ChartDef & {
  readonly restartingLabel: string;
  readonly thresholdVariable: string;
  readonly maxVariable: string;
  /** The only unit type systemd restarts. */
  readonly unitType: string;
} = {
  id: '{type}_unit_restarts',
  context: 'systemd.{type}_unit_restarts',
  family: '{type}',
  title: '{label} Unit Restarts',
  units: 'restarts',
  chartType: 'line',
  priority: 300,
  dimensions: [{ id: 'restarts', name: 'restarts', algorithm: 'absolute' }],
  dimensionAlgorithm: 'absolute',
  /** Chart label: services that restarted in the window, most restarts first, with their last crash. */
  restartingLabel: 'restarting_units',
  labels: ['restarting_units'],
  /** Chart variable: the job's restart_loop_threshold, which the restart loop alarm compares against. */
  thresholdVariable: 'restart_loop_threshold',
  /** Chart variable: the most restarts of one service within the job's restart_loop_window. */
  maxVariable: 'max_unit_restarts',
  variables: ['restart_loop_threshold', 'max_unit_restarts'],
  unitType: 'service',
  plugin: PLUGIN_NAME,
  module: MODULE_NAME,
};
