// metadata.yaml in the shape of Netdata's integrations (a go.d module's metadata.yaml: meta,
// overview, setup, alerts, metrics), made from the sources that define each part: the config
// options from plugin/config/schema.ts, the alerts from health.d/alarms.ts, the metrics from the
// chart definitions in charts/. Written by scripts/build/generate.mts.

import { stringify } from 'yaml';
import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS } from '../../charts/socket-activity.js';
import { UNIT_STATE_CHART, UNIT_STATE_CHARTS } from '../../charts/unit-state.js';
import { UNIT_COUNTS_CHART, UNIT_RESTARTS_CHART, UNIT_TRANSITIONS_CHART } from '../../charts/unit-summary.js';
import { ALARMS } from '../../health.d/alarms.js';
import { CONFIG_FILE_NAME, DEFAULT_CONTEXT_PREFIX, DEFAULT_INCLUDE, defaultJob, JOB_SCHEMA, MAX_JOBS, MAX_PATTERNS, type JobConfig, type KeySpec } from '../../plugin/config/schema.js';
import { MAX_CONFIG_BYTES } from '../../plugin/config/load.js';

/** Alerts with a page of their own under docs/alerts/ link there; the others to the health file. */
function alertLink(name: string, documented: ReadonlySet<string>): string {
  return documented.has(name) ? `docs/alerts/${name}.md` : 'health.d/systemdunits.conf';
}

function plain(markdown: string): string {
  return markdown.replace(/\[([^\]]+)\]\(#[^)]*\)/g, '$1');
}

/** `{type}` of a chart definition, as the metrics list names every unit type's chart. */
/** A context as most installs chart it: under the default context_prefix. */
const context = (template: string) => template.replace('{prefix}', DEFAULT_CONTEXT_PREFIX);
const perType = (template: string) => context(template).replace('{type}', '<type>').replace('{label}', '<Type>');

export function metadata(documentedAlerts: ReadonlySet<string>): unknown {
  const defaults = defaultJob(1);
  const options = (Object.entries(JOB_SCHEMA) as [keyof JobConfig, KeySpec<unknown>][]).map(([field, spec]) => ({
    name: spec.key,
    description: plain(spec.description),
    // The README's words where the value depends on something else (the agent's interval); else the value.
    default_value: spec.default === 'required' ? '' : Array.isArray(defaults[field]) || !spec.defaultText ? defaults[field] : plain(spec.defaultText),
    required: spec.default === 'required',
  }));
  const unitTypes = UNIT_STATE_CHARTS.map((k) => k.unitType).join(', ');
  // Labels the job writers set on every per-type chart (plugin/writers/job.ts, summary.ts).
  const typeLabels = [
    { name: 'unit_type', description: `the unit type (${unitTypes})` },
    { name: 'job', description: 'the job (its name in systemdunits.conf)' },
  ];
  return {
    plugin_name: UNIT_STATE_CHART.plugin,
    modules: [
      {
        meta: {
          plugin_name: UNIT_STATE_CHART.plugin,
          module_name: UNIT_STATE_CHART.module,
          monitored_instance: {
            name: 'Systemd units (event-driven)',
            link: 'https://systemd.io/',
            categories: ['data-collection.systemd'],
            icon_filename: 'systemd.svg',
          },
          keywords: ['systemd', 'units', 'services', 'sockets', 'timers', 'failed', 'flapping', 'd-bus'],
          related_resources: { integrations: { list: [] } },
          info_provided_to_referring_integrations: { description: '' },
          most_popular: false,
        },
        overview: {
          data_collection: {
            metrics_description:
              'The state of every systemd unit a job includes, one chart per unit type, with the units by state and their state ' +
              'changes, and which units failed and why (systemd\'s Result). Optionally, the connection counters of Accept=yes sockets.',
            method_description:
              'The plugin subscribes to systemd\'s signals on the system D-Bus and lists units once at start, then only reacts to ' +
              'what systemd says changed; a unit that fails and recovers between two samples is still reported as failed for that interval.',
          },
          supported_platforms: { include: ['Linux'], exclude: [] },
          multi_instance: true,
          additional_permissions: {
            description: 'None: it runs as the netdata user with no capability; any user may read unit states on the system D-Bus.',
          },
          default_behavior: {
            auto_detection: {
              description: `Without ${CONFIG_FILE_NAME}, one job named \`${defaults.name}\` charts the units of the types ${DEFAULT_INCLUDE.join(', ')}.`,
            },
            limits: {
              description: `At most ${MAX_JOBS} jobs, ${MAX_PATTERNS} patterns per include or exclude list, and a config file of ${MAX_CONFIG_BYTES / 1024} KiB.`,
            },
            performance_impact: { description: 'Event-driven: it does not list units on every sample (see the README\'s Performance section).' },
          },
        },
        setup: {
          prerequisites: { list: [] },
          configuration: {
            file: { name: CONFIG_FILE_NAME },
            options: {
              description: 'The keys are go.d systemdunits\' job keys plus this plugin\'s own; a top-level `update_every` is the default of every job.',
              folding: { title: 'Config options', enabled: true },
              list: options,
            },
            examples: {
              folding: { enabled: true, title: 'Config' },
              list: [
                {
                  name: 'The built-in job',
                  description: 'What runs without a config file.',
                  config: stringify({ jobs: [{ name: defaults.name, include: [...defaults.include] }] }),
                },
                {
                  name: 'Sockets with their connections',
                  description: 'A second job for one service, with socket activity charts and a lower flapping threshold.',
                  config: stringify({
                    jobs: [
                      {
                        name: JOB_SCHEMA.name.example,
                        include: [...JOB_SCHEMA.include.example],
                        exclude: [...JOB_SCHEMA.exclude.example],
                        socket_activity_every: JOB_SCHEMA.socketActivityEvery.example,
                        flapping_threshold: JOB_SCHEMA.flappingThreshold.example,
                      },
                    ],
                  }),
                },
              ],
            },
          },
        },
        troubleshooting: { problems: { list: [] } },
        alerts: ALARMS.map((a) => ({ name: a.template, metric: a.on, info: a.about, link: alertLink(a.template, documentedAlerts) })),
        metrics: {
          folding: { title: 'Metrics', enabled: false },
          description: `Chart ids are systemdunits_<job>.<id>; <type> is one of ${unitTypes}, for each type that has units.`,
          availability: [],
          scopes: [
            {
              name: 'unit type',
              description: 'One set of charts per unit type that has units, per job.',
              labels: [
                ...typeLabels,
                { name: UNIT_STATE_CHART.failedLabel, description: 'the failed units with systemd\'s Result, or none (unit state chart)' },
                { name: UNIT_STATE_CHART.summaryLabel, description: 'the alarm\'s words: failed: <units>, then recovered: <units> (unit state chart)' },
                { name: UNIT_STATE_CHART.adviceLabel, description: 'what to do about it (unit state chart)' },
                { name: UNIT_TRANSITIONS_CHART.changedLabel, description: 'the units that changed state in the latest interval with changes (transitions chart)' },
                { name: UNIT_RESTARTS_CHART.restartingLabel, description: 'the services that restarted within the restart_loop_window, most first, with how each last crashed (service restarts chart)' },
              ],
              metrics: [
                {
                  name: perType(UNIT_STATE_CHART.context),
                  description: perType(UNIT_STATE_CHART.title).replace('{legend}', UNIT_STATE_CHART.legend),
                  unit: UNIT_STATE_CHART.units,
                  chart_type: UNIT_STATE_CHART.chartType,
                  dimensions: [{ name: 'a dimension per unit' }],
                },
                ...[UNIT_COUNTS_CHART, UNIT_TRANSITIONS_CHART].map((c) => ({
                  name: perType(c.context),
                  description: perType(c.title),
                  unit: c.units,
                  chart_type: c.chartType,
                  dimensions: c.dimensions.map((d) => ({ name: d.name })),
                })),
                {
                  name: UNIT_RESTARTS_CHART.context.replace('{type}', UNIT_RESTARTS_CHART.unitType),
                  description: UNIT_RESTARTS_CHART.title.replace('{label}', 'Service'),
                  unit: UNIT_RESTARTS_CHART.units,
                  chart_type: UNIT_RESTARTS_CHART.chartType,
                  dimensions: UNIT_RESTARTS_CHART.dimensions.map((d) => ({ name: d.name })),
                },
              ],
            },
            {
              name: 'socket',
              description: `With socket_activity (on by default), one set of charts per Accept=yes socket unit (family "${SOCKET_ACTIVITY.family}").`,
              labels: [
                { name: SOCKET_ACTIVITY.unitLabel, description: 'the socket unit' },
                { name: SOCKET_ACTIVITY.jobLabel, description: 'the job' },
              ],
              metrics: SOCKET_ACTIVITY_CHARTS.map((c) => ({
                name: context(c.context),
                description: c.title.replace('{name}', '<socket>'),
                unit: c.units,
                chart_type: c.chartType,
                dimensions: [{ name: c.dimension.name }],
              })),
            },
          ],
        },
      },
    ],
  };
}

export function renderMetadata(documentedAlerts: ReadonlySet<string>): string {
  return `# Generated from plugin/config/schema.ts, health.d/alarms.ts and charts/ by \`npm run generate\`; edit those.\n${stringify(metadata(documentedAlerts), { lineWidth: 0 })}`;
}
