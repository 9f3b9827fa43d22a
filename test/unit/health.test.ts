// The shipped alarms must match the charts the plugin writes: one template per chart kind, reading
// the chart variable the jobs set, naming the label the jobs keep current.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SOCKET_ACTIVITY, SOCKET_ACTIVITY_CHARTS } from '../../charts/socket-activity.js';
import { UNIT_STATE_CHART, UNIT_STATE_CHARTS } from '../../charts/unit-state.js';
import { UNIT_COUNTS_CHART, UNIT_LOAD_STATES_CHART, UNIT_TRANSITIONS_CHART } from '../../charts/unit-summary.js';
import { repoRoot } from '../../harness/run.js';

type Entry = Record<string, string>;

/** The agent's health file syntax: `key: value` lines, entries starting at `template:`. */
function parseHealth(text: string): Entry[] {
  const entries: Entry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-z ]+?)\s*:\s*(.*)$/.exec(line);
    if (!m) throw new Error(`not a health line: ${raw}`);
    if (m[1] === 'template' || m[1] === 'alarm') entries.push({});
    const entry = entries.at(-1);
    if (!entry) throw new Error(`key before the first template: ${raw}`);
    if (m[1]! in entry) throw new Error(`duplicate key ${m[1]} in ${entry.template}`);
    entry[m[1]!] = m[2]!;
  }
  return entries;
}

describe('health.d/systemdunits.conf', () => {
  const all = parseHealth(readFileSync(`${repoRoot}/health.d/systemdunits.conf`, 'utf8'));
  const entries = all.filter((e) => e.template!.endsWith('_unit_failed_state'));
  const flapping = all.filter((e) => e.template!.endsWith('_units_flapping'));
  const broken = all.filter((e) => e.template!.endsWith('_unit_broken'));
  const newFailure = all.filter((e) => e.template!.endsWith('_unit_new_failure'));

  it('has nothing but the failed-state, flapping, refused-connections and restart loop templates', () => {
    const refused = all.filter((e) => e.template === 'systemd_socket_refused_connections');
    const loops = all.filter((e) => e.template === 'systemd_service_unit_restart_loop');
    expect(loops).toHaveLength(1);
    expect(entries.length + flapping.length + refused.length + broken.length + newFailure.length + loops.length).toBe(all.length);
  });

  it('has one new-failure template per chart kind: the one-sample variable, no CLEAR notification (so each WARNING is notified)', () => {
    expect(newFailure.map((e) => e.template).sort()).toEqual(UNIT_STATE_CHARTS.map((k) => `systemd_${k.unitType}_unit_new_failure`).sort());
    for (const k of UNIT_STATE_CHARTS) {
      const e = newFailure.find((x) => x.template === `systemd_${k.unitType}_unit_new_failure`)!;
      expect(e.on).toBe(UNIT_COUNTS_CHART.context.replace('{prefix}', 'systemd').replace('{type}', k.unitType));
      expect(e.calc).toBe(`$${UNIT_COUNTS_CHART.newFailuresVariable}`);
      expect(e.every).toBe('1s');
      expect(e.options).toBe('no-clear-notification');
      expect(e.info).toContain(`\${label:${UNIT_COUNTS_CHART.newFailedLabel}} `);
    }
  });

  it('has one broken-unit-file template per chart kind, on its load state chart, naming the units', () => {
    expect(broken.map((e) => e.template).sort()).toEqual(UNIT_STATE_CHARTS.map((k) => `systemd_${k.unitType}_unit_broken`).sort());
    for (const k of UNIT_STATE_CHARTS) {
      const e = broken.find((x) => x.template === `systemd_${k.unitType}_unit_broken`)!;
      expect(e.on).toBe(UNIT_LOAD_STATES_CHART.context.replace('{prefix}', 'systemd').replace('{type}', k.unitType));
      expect(e.calc).toBe(`$${UNIT_LOAD_STATES_CHART.brokenVariable}`);
      expect(e.warn).toBe('$this > 0');
      expect(e.crit).toBeUndefined();
      expect(e.info).toContain(`\${label:${UNIT_LOAD_STATES_CHART.brokenLabel}} `);
    }
  });

  it('warns on a restart loop from the plugin\'s variables, naming the services', () => {
    const loop = all.find((e) => e.template === 'systemd_service_unit_restart_loop')!;
    expect(loop.on).toBe('systemd.service_unit_restarts');
    expect(loop.calc).toBe('$max_unit_restarts');
    expect(loop.warn).toBe('$this > $restart_loop_threshold');
    expect(loop.info).toContain('${label:restarting_units}');
  });

  it('binds every template to this plugin’s charts only (go.d draws charts under the same contexts)', () => {
    const ours = new Set([UNIT_STATE_CHART.plugin, SOCKET_ACTIVITY.plugin, UNIT_TRANSITIONS_CHART.plugin]);
    expect([...ours]).toEqual(['systemdunits.plugin']);
    for (const e of all) expect(e.plugin, `${e.template} plugin:`).toBe('systemdunits.plugin');
  });

  it('keeps quotes out of alarm texts (the agent drops them: "job\'s" arrives as "job s")', () => {
    for (const e of all) for (const key of ['info', 'summary']) expect(e[key], `${e.template} ${key}`).not.toMatch(/['"`]/);
  });

  it('has one flapping template per chart kind, on its transitions chart, against the threshold variable', () => {
    expect(flapping.map((e) => e.template).sort()).toEqual(UNIT_STATE_CHARTS.map((k) => `systemd_${k.unitType}_units_flapping`).sort());
    for (const k of UNIT_STATE_CHARTS) {
      const e = flapping.find((x) => x.template === `systemd_${k.unitType}_units_flapping`)!;
      expect(e.on).toBe(UNIT_TRANSITIONS_CHART.context.replace('{prefix}', 'systemd').replace('{type}', k.unitType));
      // The plugin's own 5-minute sum: a lookup would wait for 5 minutes of data before running.
      expect(e.calc).toBe(`$${UNIT_TRANSITIONS_CHART.windowVariable}`);
      expect(e.lookup).toBeUndefined();
      expect(e.warn).toBe(`$this > $${UNIT_TRANSITIONS_CHART.thresholdVariable}`);
      expect(e.crit).toBeUndefined();
      expect(e.info).toContain(`\${label:${UNIT_TRANSITIONS_CHART.changedLabel}} `); // a space after it: 1.37 needs one
      expect(e).toMatchObject({ class: 'Errors', type: 'Linux', component: 'Systemd units', to: 'sysadmin', units: 'transitions' });
    }
  });

  it('has one failed-state template for each chart kind the plugin can write', () => {
    expect(entries.map((e) => e.template).sort()).toEqual(UNIT_STATE_CHARTS.map((k) => `systemd_${k.unitType}_unit_failed_state`).sort());
    for (const k of UNIT_STATE_CHARTS) {
      const e = entries.find((x) => x.template === `systemd_${k.unitType}_unit_failed_state`)!;
      expect(e.on).toBe(UNIT_STATE_CHART.context.replace('{prefix}', 'systemd').replace('{type}', k.unitType));
    }
  });

  it('reads the chart variable and label the jobs keep current, and raises WARNING only', () => {
    for (const e of entries) {
      expect(e.calc).toBe(`$${UNIT_STATE_CHART.failedVariable}`);
      expect(e.warn).toBe('$this > 0');
      expect(e.crit).toBeUndefined();
      expect(e.every).toBe('1s');
      expect(e.lookup).toBeUndefined(); // a lookup would sum the dimensions
      // The words come from the labels the job keeps current: at CLEAR they say what recovered.
      expect(e.info).toContain(`\${label:${UNIT_STATE_CHART.summaryLabel}} `); // a space after it: 1.37 needs one
      expect(e.info).toContain(`\${label:${UNIT_STATE_CHART.adviceLabel}}`);
      expect(e.summary).toContain(`\${label:${UNIT_STATE_CHART.summaryLabel}}`);
      // Nothing in the fixed text that is wrong once the units recovered.
      for (const key of ['info', 'summary']) expect(e[key]).not.toMatch(/restart|fix|failed/);
      expect(e).toMatchObject({ class: 'Errors', type: 'Linux', component: 'Systemd units', to: 'sysadmin' });
      expect(e.delay).toMatch(/^down /); // never delays the WARNING
    }
  });

  it('has a refused-connections template on the refused chart, counting its dimension over a window', () => {
    const refused = SOCKET_ACTIVITY_CHARTS.find((c) => c.counter === 'NRefused')!;
    const e = all.find((x) => x.template === 'systemd_socket_refused_connections')!;
    expect(e).toBeDefined();
    expect(e.on).toBe(refused.context.replace('{prefix}', 'systemd'));
    // A rate averaged over a minute times 60 s: the count in that minute, whatever the interval.
    expect(e.lookup).toBe(`average -1m unaligned of ${refused.dimension.id}`);
    expect(e.calc).toBe('$this * 60');
    expect(e.warn).toBe('$this > 0');
    expect(e.crit).toBeUndefined();
    expect(e.info).toContain(`\${label:${SOCKET_ACTIVITY.unitLabel}} `); // a space after it: 1.37 needs one
    expect(e).toMatchObject({ class: 'Errors', type: 'Linux', component: 'Systemd units', to: 'sysadmin' });
    expect(e.delay).toMatch(/^down /);
  });
});
