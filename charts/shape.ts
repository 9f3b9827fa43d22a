// The one shape of a chart definition, and its one template filler. Every chart the plugin writes
// is an entry of this shape under charts/; writers add only the values (and, for charts with one
// dimension per unit, the dimensions). `{word}` in a template is filled from the chart's instance
// (the unit type's `{type}` and `{label}`, a socket's `{unit}` and `{name}`); a context starts with
// `{prefix}`, the job's context_prefix (`systemd` unless set: go.d charts there too).

import type { ChartLine, DimensionLine } from '../plugin/netdata/protocol.js';

export const PLUGIN_NAME = 'systemdunits.plugin';
export const MODULE_NAME = 'systemdunits';

export type DimensionDef = DimensionLine;

export interface ChartDef {
  readonly id: string;
  readonly context: string;
  readonly family: string;
  readonly title: string;
  readonly units: string;
  readonly chartType: ChartLine['chartType'];
  /** Added to the instance's priority (a unit type's place on the dashboard; 0 for sockets). */
  readonly priority: number;
  /** Fixed dimensions, in order; empty when the writer adds one per unit (see PerUnitChartDef). */
  readonly dimensions: readonly DimensionDef[];
  /** Chart labels the writer sets beyond `job` and the instance's own, in the order they go out. */
  readonly labels: readonly string[];
  /** Chart variables the writer sets in every sample. */
  readonly variables: readonly string[];
  readonly plugin: string;
  readonly module: string;
}

/** A chart whose writer adds one dimension per unit, each with this algorithm. */
export interface PerUnitChartDef extends ChartDef {
  readonly dimensionAlgorithm: DimensionLine['algorithm'];
}

/** What a template's `{word}`s stand for in one chart instance. */
export type TemplateValues = Readonly<Record<string, string>>;

/** Fills `{word}`s in one pass (a value is never filled again); unknown words stay as they are. */
export function fill(template: string, values: TemplateValues): string {
  return template.replace(/\{(\w+)\}/g, (all, word: string) => values[word] ?? all);
}

/** One instance's CHART line: `chartType` is the job's (`systemdunits_<job>`), `contextPrefix` its context_prefix. */
export function chartLine(def: ChartDef, values: TemplateValues, at: { chartType: string; priority: number; updateEvery: number; contextPrefix: string }): ChartLine {
  return {
    fullId: `${at.chartType}.${fill(def.id, values)}`,
    title: fill(def.title, values),
    units: def.units,
    family: fill(def.family, values),
    context: fill(def.context, { ...values, prefix: at.contextPrefix }),
    chartType: def.chartType,
    priority: at.priority + def.priority,
    updateEvery: at.updateEvery,
    plugin: def.plugin,
    module: def.module,
  };
}
