// Chart definitions as data: connection counters of Accept=yes socket units. One chart per socket
// per kind (the way go.d modules chart each instance), so each socket gets its own alarm and its
// own labels; `{unit}` stands for the socket's id-safe name.

/** Which counter a chart shows; the names are systemd's Socket properties. */
export type SocketCounter = 'NAccepted' | 'NConnections' | 'NRefused';

export interface SocketActivityChart {
  readonly counter: SocketCounter;
  readonly id: string;
  readonly context: string;
  readonly title: string;
  readonly units: string;
  readonly priority: number;
  readonly chartType: 'line' | 'area';
  readonly dimension: {
    readonly id: string;
    readonly name: string;
    /** NAccepted and NRefused only grow: the agent turns them into a rate. */
    readonly algorithm: 'absolute' | 'incremental';
  };
}

export const SOCKET_ACTIVITY_CHARTS: readonly SocketActivityChart[] = [
  {
    counter: 'NAccepted',
    id: 'socket_{unit}_accepted_connections',
    context: 'systemd.socket_accepted_connections',
    title: 'Socket {name} Accepted Connections',
    units: 'connections/s',
    priority: 70100,
    chartType: 'line',
    dimension: { id: 'accepted', name: 'accepted', algorithm: 'incremental' },
  },
  {
    counter: 'NConnections',
    id: 'socket_{unit}_connections',
    context: 'systemd.socket_connections',
    title: 'Socket {name} Current Connections',
    units: 'connections',
    priority: 70101,
    chartType: 'line',
    dimension: { id: 'connections', name: 'connections', algorithm: 'absolute' },
  },
  {
    counter: 'NRefused',
    id: 'socket_{unit}_refused_connections',
    context: 'systemd.socket_refused_connections',
    title: 'Socket {name} Refused Connections',
    units: 'connections/s',
    priority: 70102,
    chartType: 'line',
    dimension: { id: 'refused', name: 'refused', algorithm: 'incremental' },
  },
];

/** The fixed parts of every socket activity chart. */
export const SOCKET_ACTIVITY = {
  family: 'socket activity',
  plugin: 'systemdunits.plugin',
  module: 'systemdunits',
  /** Chart labels: which unit, and which job charts it. */
  unitLabel: 'unit_name',
  jobLabel: 'job',
} as const;

export function fillSocket(template: string, unitId: string, unitName: string): string {
  return template.replaceAll('{unit}', unitId).replaceAll('{name}', unitName);
}
