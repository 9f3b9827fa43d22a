// Chart definitions as data: connection counters of Accept=yes socket units. One chart per socket
// per kind (the way go.d modules chart each instance), so each socket gets its own alarm and its
// own labels; `{unit}` stands for the socket's id-safe name, `{name}` for its readable one.

import { MODULE_NAME, PLUGIN_NAME, type ChartDef, type DimensionDef } from './shape.js';

/** Which counter a chart shows; the names are systemd's Socket properties. */
export type SocketCounter = 'NAccepted' | 'NConnections' | 'NRefused';

export interface SocketActivityChart extends ChartDef {
  readonly counter: SocketCounter;
  /** The chart's one dimension (NAccepted and NRefused only grow: the agent makes them a rate). */
  readonly dimension: DimensionDef;
}

function socketChart(counter: SocketCounter, id: string, title: string, units: string, priority: number, dimension: DimensionDef): SocketActivityChart {
  return {
    counter,
    id: `socket_{unit}_${id}`,
    context: `{prefix}.socket_${id}`,
    family: SOCKET_ACTIVITY.family,
    title: `Socket {name} ${title}`,
    units,
    chartType: 'line',
    priority,
    dimensions: [dimension],
    dimension,
    labels: [],
    variables: [],
    plugin: PLUGIN_NAME,
    module: MODULE_NAME,
  };
}

/** The fixed parts of every socket activity chart. */
export const SOCKET_ACTIVITY = {
  family: 'socket activity',
  plugin: PLUGIN_NAME,
  module: MODULE_NAME,
  /** Chart labels: which unit, and which job charts it. */
  unitLabel: 'unit_name',
  jobLabel: 'job',
} as const;

export const SOCKET_ACTIVITY_CHARTS: readonly SocketActivityChart[] = [
  socketChart('NAccepted', 'accepted_connections', 'Accepted Connections', 'connections/s', 70100, { id: 'accepted', name: 'accepted', algorithm: 'incremental' }),
  socketChart('NConnections', 'connections', 'Current Connections', 'connections', 70101, { id: 'connections', name: 'connections', algorithm: 'absolute' }),
  socketChart('NRefused', 'refused_connections', 'Refused Connections', 'connections/s', 70102, { id: 'refused', name: 'refused', algorithm: 'incremental' }),
];

/** What `{unit}` and `{name}` stand for in one socket's charts. */
export function socketValues(unitId: string, unitName: string): Readonly<Record<string, string>> {
  return { unit: unitId, name: unitName };
}
