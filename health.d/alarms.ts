// The one source of the plugin's alarms: health.d/systemdunits.conf is made from this file by
// `npm run generate` (test/unit/generated.test.ts fails while it is stale). A template is a unit
// type × an alarm kind; contexts, chart variables and labels come from the chart definitions in
// charts/, so an alarm always names what the plugin writes.
//
// What differs per agent version is described here too (AGENT_FORMS), and rendered by
// renderHealth(form); scripts/install/lib/netdata-layout.sh's nd_health_for_version makes the same forms
// from the shipped file with sed at install time (test/unit/generated.test.ts checks they agree).

import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS } from '../charts/socket-activity.js';
import { FAILED_ADVICE } from '../plugin/writers/failure-text.js';
import { UNIT_STATE_CHART, UNIT_STATE_CHARTS, type UnitStateChartKind } from '../charts/unit-state.js';
import { UNIT_COUNTS_CHART, UNIT_LOAD_STATES_CHART, UNIT_RESTARTS_CHART, UNIT_TRANSITIONS_CHART } from '../charts/unit-summary.js';
import { DEFAULT_CONTEXT_PREFIX } from '../plugin/config/schema.js';

/** One template, in the agent's key order. `summary` and `${label:…}` depend on the agent version. */
export interface Alarm {
  readonly template: string;
  /** The context, with the default prefix (renderHealth puts another in its place). */
  readonly on: string;
  readonly lookup?: string;
  readonly calc: string;
  readonly units: string;
  readonly every: string;
  readonly warn: string;
  /** `options:` (both 1.37.1 and v2 know `no-clear-notification`). */
  readonly options?: string;
  /** The alert's one-line title (v1.42+). */
  readonly summary: string;
  readonly info: string;
  /** For metadata.yaml: what the alarm watches, in a few words. */
  readonly about: string;
}

/** An alarm kind: a group of templates and the comment that explains them in the file. */
export interface AlarmKind {
  readonly comment: string;
  readonly alarms: readonly Alarm[];
}

/** Keys every template has, whatever its kind. */
const COMMON = {
  plugin: UNIT_STATE_CHART.plugin,
  class: 'Errors',
  type: 'Linux',
  component: 'Systemd units',
  // Holds back only the recovery notification of a flapping unit (never the status or the WARNING).
  delay: 'down 1m multiplier 1.5 max 1h',
  to: 'sysadmin',
} as const;

const label = (name: string) => `\${label:${name}}`;
const ofType = (template: string, kind?: UnitStateChartKind) =>
  template.replaceAll('{prefix}', DEFAULT_CONTEXT_PREFIX).replaceAll('{type}', kind?.unitType ?? '{type}');
/** A context with the job's context_prefix in place of the default one. */
const withPrefix = (context: string, prefix: string) =>
  context.startsWith(`${DEFAULT_CONTEXT_PREFIX}.`) ? `${prefix}${context.slice(DEFAULT_CONTEXT_PREFIX.length)}` : context;

const failedState = (kind: UnitStateChartKind): Alarm => ({
  template: `systemd_${kind.unitType}_unit_failed_state`,
  on: ofType(UNIT_STATE_CHART.context, kind),
  calc: `$${UNIT_STATE_CHART.failedVariable}`,
  units: 'units',
  every: '1s',
  warn: '$this > 0',
  summary: `${kind.label} units ${label(UNIT_STATE_CHART.summaryLabel)}`,
  info: `${kind.unitType} units ${label(UNIT_STATE_CHART.summaryLabel)} - ${label(UNIT_STATE_CHART.adviceLabel)}`,
  about: `${kind.unitType} units of a job in the failed state`,
});

const refused = SOCKET_ACTIVITY_CHARTS.find((c) => c.counter === 'NRefused')!;
const refusedConnections: Alarm = {
  template: 'systemd_socket_refused_connections',
  on: ofType(refused.context),
  lookup: `average -1m unaligned of ${refused.dimension.id}`,
  calc: '$this * 60',
  units: 'connections',
  every: '10s',
  warn: '$this > 0',
  summary: `Socket ${label(SOCKET_ACTIVITY.unitLabel)} refused connections`,
  info:
    `connections refused by socket ${label(SOCKET_ACTIVITY.unitLabel)} in the last minute - it reached MaxConnections= or ` +
    'MaxConnectionsPerSource= or its trigger limit; see systemctl status and journalctl -u for it',
  about: 'connections an Accept=yes socket refused in the last minute',
};

const flapping = (kind: UnitStateChartKind): Alarm => ({
  template: `systemd_${kind.unitType}_units_flapping`,
  on: ofType(UNIT_TRANSITIONS_CHART.context, kind),
  calc: `$${UNIT_TRANSITIONS_CHART.windowVariable}`,
  units: 'transitions',
  every: '10s',
  warn: `$this > $${UNIT_TRANSITIONS_CHART.thresholdVariable}`,
  summary: `${kind.label} units flapping: ${label(UNIT_TRANSITIONS_CHART.changedLabel)}`,
  info:
    `${kind.unitType} units changed state more often in 5 minutes than the flapping_threshold of the job; latest: ` +
    `${label(UNIT_TRANSITIONS_CHART.changedLabel)} - run systemctl status and journalctl -u on each to see why they keep changing`,
  about: `${kind.unitType} units of a job changed state more often in 5 minutes than flapping_threshold`,
});

const newFailure = (kind: UnitStateChartKind): Alarm => ({
  template: `systemd_${kind.unitType}_unit_new_failure`,
  on: ofType(UNIT_COUNTS_CHART.context, kind),
  calc: `$${UNIT_COUNTS_CHART.newFailuresVariable}`,
  units: 'units',
  every: '1s',
  warn: '$this > 0',
  options: 'no-clear-notification',
  summary: `${kind.label} units newly failed: ${label(UNIT_COUNTS_CHART.newFailedLabel)}`,
  info:
    `${kind.unitType} units that just entered failed: ${label(UNIT_COUNTS_CHART.newFailedLabel)} - ` +
    `systemd_${kind.unitType}_unit_failed_state lists every unit of the type still failed - ${FAILED_ADVICE}`,
  about: `${kind.unitType} units of a job that just entered the failed state, one notification per batch`,
});

const broken = (kind: UnitStateChartKind): Alarm => ({
  template: `systemd_${kind.unitType}_unit_broken`,
  on: ofType(UNIT_LOAD_STATES_CHART.context, kind),
  calc: `$${UNIT_LOAD_STATES_CHART.brokenVariable}`,
  units: 'units',
  every: '5s',
  warn: '$this > 0',
  summary: `${kind.label} unit files broken: ${label(UNIT_LOAD_STATES_CHART.brokenLabel)}`,
  info:
    `${kind.unitType} units systemd could not load and will never run: ${label(UNIT_LOAD_STATES_CHART.brokenLabel)} - ` +
    'run systemd-analyze verify and systemctl status on each - fix the unit file - then systemctl daemon-reload',
  about: `${kind.unitType} units of a job whose unit file systemd could not load (bad-setting or error)`,
});

const restartLoop: Alarm = {
  template: 'systemd_service_unit_restart_loop',
  on: ofType(UNIT_RESTARTS_CHART.context.replaceAll('{type}', UNIT_RESTARTS_CHART.unitType)),
  calc: `$${UNIT_RESTARTS_CHART.maxVariable}`,
  units: 'restarts',
  every: '1s',
  warn: `$this > $${UNIT_RESTARTS_CHART.thresholdVariable}`,
  summary: `Service restart loop: ${label(UNIT_RESTARTS_CHART.restartingLabel)}`,
  info:
    `services restarted more than the restart_loop_threshold of the job within its restart_loop_window: ` +
    `${label(UNIT_RESTARTS_CHART.restartingLabel)} - run systemctl status and journalctl -u on each to see why it keeps crashing`,
  about: 'a service of a job restarted more than restart_loop_threshold times within restart_loop_window seconds',
};

export const HEADER = `# Alarms of systemdunits.plugin: one per unit type, raised while any unit of the chart has failed.
#
# The plugin sets the chart variable \`failed_units\` (how many units its latest sample reports
# failed, including units that failed and recovered within that sample's interval) and the chart
# label \`failed_units\` (which ones, with systemd's Result). The alarms read the variable, not a
# lookup over dimensions: a lookup sums dimensions, and \`min2max\` differs between agent versions.
# \`every: 1s\` makes the status change within a second of the sample; \`delay\` holds back only
# the recovery notification of a flapping unit, never the status or the WARNING notification.
#
# This file is named like the agent's stock systemdunits.conf on purpose: a user health file of the
# same name replaces the stock one, whose templates (written for go.d's chart layout) would
# misread these charts: \`calc: $failed\` finds nothing (on 1.37, through the chart family, the
# \`failed\` dimension of <type>_units_by_state), and \`warn: $this == 1\` misses two failed units.
#
# \`plugin: systemdunits.plugin\` keeps every template off charts of other collectors under the same
# contexts: go.d's \`systemdunits\` (on by default on v2 agents) draws one chart per unit under
# systemd.<type>_unit_state with another shape, where \`$failed_units\` would be NaN. Both 1.37.1 and
# v2 accept the key (v2 turns it into a match on the chart label _collect_plugin).
#
# Chart labels in \`info:\`: agents from v1.38 expand \${label:NAME}; v1.37 and older expand only
# $label:NAME. scripts/install/install.sh rewrites the former into the latter on those old agents.
#
# In the plugin's source tree this file is made from health.d/alarms.ts by \`npm run generate\`.`;

export const ALARM_KINDS: readonly AlarmKind[] = [
  { comment: '', alarms: UNIT_STATE_CHARTS.map(failedState) },
  {
    comment: `# Connections an Accept=yes socket refused (MaxConnections=, MaxConnectionsPerSource=, the trigger
# limit), from the charts a job writes with socket activity on (the default): one alarm per socket. The
# chart holds a rate; the average over a minute times 60 s is the count in that minute. The agent
# first evaluates it once the chart holds a minute of data.`,
    alarms: [refusedConnections],
  },
  {
    comment: `# Flapping: state changes of one unit type in the last 5 minutes (the chart variable transitions_5m
# on systemd.<type>_unit_state_transitions, kept by the plugin: a \`lookup: sum -5m\` would not be
# evaluated until the chart has 5 minutes of data), against the job's flapping_threshold (a chart
# variable the plugin sets from systemdunits.conf, default 20). To use another threshold for one
# unit type on every job, write the number in place of $flapping_threshold below.`,
    alarms: UNIT_STATE_CHARTS.map(flapping),
  },
  {
    comment: `# New failures: one notification per batch of units entering failed, naming them, even while other
# units of the type stay failed (systemd_<type>_unit_failed_state then stays WARNING and sends
# nothing). The plugin sets the chart variable new_failures on <prefix>.<type>_units_by_state for
# one sample only (the units that entered failed since the previous one) and the label
# new_failed_units naming them; the alarm is WARNING for that second and CLEAR after it.
# no-clear-notification: that CLEAR is never notified (the failed-state alarm tells the recovery),
# and the agent then notifies each later WARNING too instead of skipping a status equal to the last
# one it notified. Units failing together (in one sample interval) are one notification.`,
    alarms: UNIT_STATE_CHARTS.map(newFailure),
  },
  {
    comment: `# Broken unit files: units whose LoadState is bad-setting or error (a typo in a unit file, a timer
# with an invalid OnCalendar=) never run. The plugin reads load states from systemd's listings (at
# start and after every daemon-reload) and sets the chart variable broken_units and the label of the
# same name on systemd.<type>_units_by_load_state. not-found and masked units are charted, never
# alarmed on: they are normal on every host.`,
    alarms: UNIT_STATE_CHARTS.map(broken),
  },
  {
    comment: `# Crash loops: a service with Restart= that keeps crashing never stays failed until
# its start limit (never, with StartLimitIntervalSec=0). The plugin counts its restarts from
# systemd's NRestarts signals and sets max_unit_restarts (the most restarts of one service within
# the job's restart_loop_window) and restart_loop_threshold on systemd.service_unit_restarts; the
# label restarting_units names the services with why each last crashed. every 1s: a loop is
# told within seconds; it clears once no service restarted more than the threshold in the window.`,
    alarms: [restartLoop],
  },
];

export const ALARMS: readonly Alarm[] = ALARM_KINDS.flatMap((k) => k.alarms);

/**
 * How agents differ in what they read: `summary:` came with v1.42 (older ones log "unknown key" for
 * each template at every health load), and before v1.38 `info:` expands only `$label:NAME`.
 */
export type AgentForm = 'current' | 'before-1.42' | 'before-1.38';

function renderAlarm(a: Alarm, form: AgentForm, prefix: string): string {
  const info = form === 'before-1.38' ? a.info.replace(/\$\{label:([A-Za-z0-9_]*)\}/g, '$label:$1') : a.info;
  const lines: [string, string | undefined][] = [
    ['template', a.template],
    ['on', withPrefix(a.on, prefix)],
    ['plugin', COMMON.plugin],
    ['class', COMMON.class],
    ['type', COMMON.type],
    ['component', COMMON.component],
    ['lookup', a.lookup],
    ['calc', a.calc],
    ['units', a.units],
    ['every', a.every],
    ['warn', a.warn],
    ['delay', COMMON.delay],
    ['options', a.options],
    ['summary', form === 'current' ? a.summary : undefined],
    ['info', info],
    ['to', COMMON.to],
  ];
  return lines
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k.padStart(9)}: ${v}\n`)
    .join('');
}

/**
 * health.d/systemdunits.conf as agents of `form` read it (the shipped file is `current`), for the
 * charts of a config whose context_prefix is `prefix` (the installer's nd_health_for_prefix makes
 * the same of the shipped file; the alarm names stay).
 */
export function renderHealth(form: AgentForm = 'current', prefix: string = DEFAULT_CONTEXT_PREFIX): string {
  const parts = [`${HEADER}\n`];
  for (const kind of ALARM_KINDS) {
    parts.push(kind.alarms.map((a) => `\n${kind.comment && a === kind.alarms[0] ? `${kind.comment}\n\n` : ''}${renderAlarm(a, form, prefix)}`).join(''));
  }
  return parts.join('');
}
