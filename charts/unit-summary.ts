// Chart definitions as data: the per-unit-type summaries each job writes next to its unit state
// chart, with a fixed set of dimensions. `{type}` and `{label}` are a unit type's (charts/unit-state.ts),
// so the same unit types get them, in the same family (the unit type) on the dashboard.

import { MODULE_NAME, PLUGIN_NAME, type ChartDef } from './shape.js';

/**
 * How many units of the type are in each state in this sample; a unit that entered failed since
 * the previous sample counts as failed, as on the state chart. Stacked: the top is the unit count.
 */
export const UNIT_COUNTS_CHART: ChartDef & {
  readonly newFailedLabel: string;
  readonly newFailuresVariable: string;
} = {
  id: '{type}_units_by_state',
  context: '{prefix}.{type}_units_by_state',
  family: '{type}',
  title: '{label} Units by State',
  units: 'units',
  chartType: 'stacked',
  /** After the type's state chart. */
  priority: 100,
  // Colours: both dashboards take them from one palette (dark themes green, red, blue, orange, cyan;
  // light ones blue, red, green), 1.37's in the order of the dimensions, v2's (@netdata/charts
  // 6.10.6+) in the sorted order of their names (its /api/v3 keys a context's dimensions by name).
  // Names that sort in this order give active the first colour and failed the second on both:
  // hence `starting` and `stopping` for activating and deactivating, which sort first.
  // The writer maps each state to its dimension by id, not by position.
  dimensions: [
    { id: 'active', name: 'active', algorithm: 'absolute' },
    { id: 'failed', name: 'failed', algorithm: 'absolute' },
    { id: 'inactive', name: 'inactive', algorithm: 'absolute' },
    { id: 'activating', name: 'starting', algorithm: 'absolute' },
    { id: 'deactivating', name: 'stopping', algorithm: 'absolute' },
  ],
  /**
   * Chart label: the units that entered failed in the latest interval that had new failures, with
   * systemd's Result (kept until the next new failure: the new-failure alarm's text names them).
   */
  newFailedLabel: 'new_failed_units',
  labels: ['new_failed_units'],
  /**
   * Chart variable: how many units entered failed since the previous sample, for one sample only.
   * The new-failure alarm goes WARNING on each such sample and CLEAR on the next, so every batch of
   * new failures is a status change of its own, whatever stays failed from before.
   */
  newFailuresVariable: 'new_failures',
  variables: ['new_failures'],
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
  context: '{prefix}.{type}_unit_state_transitions',
  family: '{type}',
  title: '{label} Unit State Transitions',
  units: 'transitions',
  chartType: 'line',
  priority: 200,
  dimensions: [{ id: 'transitions', name: 'transitions', algorithm: 'absolute' }],
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
 * How many units of the type are in each load state, as systemd's latest full listing (at start,
 * after a daemon-reload) and its signals say: a unit file with a bad setting or one systemd could
 * not load never runs, and shows here. `not-found` (referenced, no unit file) and `masked` are
 * normal on every host: charted, never alarmed on.
 */
export const UNIT_LOAD_STATES_CHART: ChartDef & {
  readonly brokenStates: readonly string[];
  readonly brokenLabel: string;
  readonly brokenVariable: string;
} = {
  id: '{type}_units_by_load_state',
  context: '{prefix}.{type}_units_by_load_state',
  family: '{type}',
  title: '{label} Units by Load State',
  units: 'units',
  chartType: 'stacked',
  priority: 300,
  // Names are systemd's LoadState words; a unit in another (stub, merged: passing) counts nowhere.
  dimensions: [
    { id: 'loaded', name: 'loaded', algorithm: 'absolute' },
    { id: 'not_found', name: 'not-found', algorithm: 'absolute' },
    { id: 'bad_setting', name: 'bad-setting', algorithm: 'absolute' },
    { id: 'error', name: 'error', algorithm: 'absolute' },
    { id: 'masked', name: 'masked', algorithm: 'absolute' },
  ],
  /** The load states the broken alarm warns on: the unit never runs until its file is fixed. */
  brokenStates: ['bad-setting', 'error'],
  /** Chart label: the broken units with their load state, `none` when there is none. */
  brokenLabel: 'broken_units',
  labels: ['broken_units'],
  /** Chart variable the broken alarm reads: how many units are in a broken load state. */
  brokenVariable: 'broken_units',
  variables: ['broken_units'],
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
  context: '{prefix}.{type}_unit_restarts',
  family: '{type}',
  title: '{label} Unit Restarts',
  units: 'restarts',
  chartType: 'line',
  priority: 400,
  dimensions: [{ id: 'restarts', name: 'restarts', algorithm: 'absolute' }],
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
