// Chart definitions as data: the per-unit-type summaries each job writes next to its unit state
// chart. `{type}` and `{label}` are filled from charts/unit-state.ts's kinds, so the same unit types
// get them, in the same family (the unit type) on the dashboard.

/** A chart with a fixed set of dimensions, one chart per unit type per job. */
export interface SummaryChartDef {
  readonly id: string;
  readonly context: string;
  readonly family: string;
  readonly title: string;
  readonly units: string;
  readonly chartType: 'line' | 'area' | 'stacked';
  /** Added to the unit type's priority, so each summary sits after the type's state chart. */
  readonly priorityOffset: number;
  readonly dimensions: readonly { readonly id: string; readonly name: string }[];
  readonly dimensionAlgorithm: 'absolute';
  readonly plugin: string;
  readonly module: string;
}

/**
 * How many units of the type are in each state in this sample; a unit that entered failed since
 * the previous sample counts as failed, as on the state chart. Stacked: the top is the unit count.
 */
export const UNIT_COUNTS_CHART: SummaryChartDef = {
  id: '{type}_units_by_state',
  context: 'systemd.{type}_units_by_state',
  family: '{type}',
  title: '{label} Units by State',
  units: 'units',
  chartType: 'stacked',
  priorityOffset: 100,
  // Order = the state values 1..5, so dimension i+1 is StateValue i+1.
  dimensions: [
    { id: 'active', name: 'active' },
    { id: 'inactive', name: 'inactive' },
    { id: 'activating', name: 'activating' },
    { id: 'deactivating', name: 'deactivating' },
    { id: 'failed', name: 'failed' },
  ],
  dimensionAlgorithm: 'absolute',
  plugin: 'systemdunits.plugin',
  module: 'systemdunits',
};

/**
 * ActiveState changes of the type's units during the sample's interval, as systemd signalled them
 * (so changes between two samples count too), per interval rather than per second.
 */
export const UNIT_TRANSITIONS_CHART: SummaryChartDef & {
  /** Chart variable: the job's flapping_threshold, which the flapping alarm compares against. */
  readonly thresholdVariable: string;
  /**
   * Chart variable: changes in the last `windowSeconds`, which the flapping alarm reads. Kept by
   * the plugin rather than a `lookup: sum -5m`, which agents do not evaluate until the chart has
   * 5 minutes of data (and which would interpolate).
   */
  readonly windowVariable: string;
  readonly windowSeconds: number;
  /** Chart label: units that changed state in the latest interval that had changes. */
  readonly changedLabel: string;
} = {
  id: '{type}_unit_state_transitions',
  context: 'systemd.{type}_unit_state_transitions',
  family: '{type}',
  title: '{label} Unit State Transitions',
  units: 'transitions',
  chartType: 'line',
  priorityOffset: 200,
  dimensions: [{ id: 'transitions', name: 'transitions' }],
  dimensionAlgorithm: 'absolute',
  plugin: 'systemdunits.plugin',
  module: 'systemdunits',
  thresholdVariable: 'flapping_threshold',
  windowVariable: 'transitions_5m',
  windowSeconds: 300,
  changedLabel: 'changed_units',
};
