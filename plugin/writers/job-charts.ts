// What every chart writer of a job needs to know of the job.

export interface JobCharts {
  readonly name: string;
  /** `systemdunits_<job>`: the type part of every chart id of the job. */
  readonly chartType: string;
  readonly updateEvery: number;
  readonly aggregateInstances: boolean;
  /** The first part of its chart contexts (config context_prefix). */
  readonly contextPrefix: string;
}
