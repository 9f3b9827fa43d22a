// The agent's own dashboard (Netdata 1.37.1's classic one) in headless Debian chromium shows the
// socket state chart of the installed plugin: the chart's element, its graph, and a legend with
// every socket unit and its state, a failed one included, updated live. Real systemd (sandbox), a
// real agent, the plugin installed with scripts/install/install.sh. Needs root, scripts/install/install-test-deps.sh
// --with-browser. Set SCREENSHOT=FILE.png to keep a screenshot of the page.
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, haveChromium, launchChromium, legendValues, openChart, readChart, waitForChart } from '../../harness/browser.js';
import { startAgent, type Agent } from '../../harness/agent.js';
import { cleanUp } from '../../harness/run.js';
import { startSandbox, type Sandbox } from '../../harness/sandbox.js';
import { installForAgent } from '../../harness/e2e.js';
import { failSocket, startSockets } from '../../harness/units.js';

const CHART = 'systemdunits_service_units.socket_unit_state';
const TITLE = 'Socket Unit State (1: active, 2: inactive, 3: activating, 4: deactivating, 5: failed)';
const SOCKETS = ['web', 'metrics', 'broken', 'flappy'];
const COUNTS = 'systemdunits_service_units.socket_units_by_state';

/** Which of red, green, blue dominates an `rgb(r, g, b)` colour clearly, else 'other'. */
function hue(color: string): 'red' | 'green' | 'blue' | 'other' {
  const [r, g, b] = (color.match(/\d+/g) ?? []).map(Number) as [number, number, number];
  if (r > 2.5 * g && r > 2.5 * b) return 'red';
  if (g > 1.3 * r && g > 1.3 * b) return 'green';
  if (b > 1.3 * r && b > 1.1 * g) return 'blue';
  return 'other';
}

const chromiumMissing = !haveChromium();
if (chromiumMissing) {
  console.warn(`[browser] SKIPPED: ${CHROMIUM} is not installed (apt-get install chromium, or scripts/install/install-test-deps.sh --with-browser)`);
}

describe.skipIf(chromiumMissing)(`the agent's dashboard in ${CHROMIUM}`, () => {
  let sb: Sandbox | undefined;
  let agent: Agent | undefined;
  let work: string | undefined;
  let browser: Browser | undefined;
  let page: Page;
  const times: Record<string, number> = {};
  const since = (t0: number) => (performance.now() - t0) / 1000;
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

  beforeAll(async () => {
    const t0 = performance.now();
    sb = await startSandbox();
    await startSockets(sb, SOCKETS);
    const bus = await sb.expose();
    await failSocket(sb, 'broken'); // failed before the agent starts

    work = await mkdtemp(path.join(os.tmpdir(), 'sdu-browser-'));
    await chmod(work, 0o755);
    const { pluginsDir, healthDir } = await installForAgent(work);
    agent = await startAgent({
      dir: work,
      hostname: 'sdu-browser',
      pluginsDir,
      healthDir,
      busAddress: bus,
    });
    await agent.waitFor(async () => (await agent!.charts()).charts[CHART], 20_000, `${CHART} in the API`);

    const tBrowser = performance.now();
    browser = await launchChromium();
    ({ page } = await openChart(browser, agent.url, CHART));
    // Rendered: a graph, and a legend whose every item has a value.
    await waitForChart(page, CHART, (c) => c.canvases > 0 && c.legend.length > 0 && c.legend.every((i) => i.value !== '-' && i.value !== ''));
    times.rendered = since(tBrowser);
    times.setup = since(t0);
  }, 360_000);

  afterAll(async () => {
    const cleaning = cleanUp([
      async () => {
        if (page && process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT });
      },
      () => browser?.close(),
      () => agent?.stop(),
      () => sb?.stop({ removeDir: true }),
      () => (work ? rm(work, { recursive: true, force: true }) : undefined),
    ]);
    console.log(
      `[browser] setup ${times.setup?.toFixed(1)} s (chromium start to chart rendered ${times.rendered?.toFixed(1)} s); ` +
        `a failure reached the legend in ${times.liveFailure?.toFixed(1)} s` +
        (process.env.SCREENSHOT ? `; screenshot ${process.env.SCREENSHOT}` : ''),
    );
    await cleaning;
  }, 120_000);

  it('renders the socket state chart: its element, title and graph', async () => {
    const el = page.locator(`[data-netdata="${CHART}"]`);
    await expect(el.count()).resolves.toBe(1);
    expect(await el.isVisible()).toBe(true);
    const shown = await readChart(page, CHART);
    expect(shown.title).toBe(`${TITLE} (${CHART})`);
    expect(shown.canvases).toBeGreaterThan(0);
  });

  it("shows every socket unit in the legend, the same dimensions as the agent's API", async () => {
    const shown = await readChart(page, CHART);
    const names = shown.legend.map((i) => i.name);
    expect(names).toEqual(expect.arrayContaining([...SOCKETS.map((n) => `${n}.socket`), 'dbus.socket']));
    const api = await agent!.chart(CHART);
    expect([...names].sort()).toEqual(Object.values(api.dimensions).map((d) => d.name).sort());
  });

  it('shows the failed socket as 5 and the listening ones as 1', async () => {
    const values = legendValues(await waitForChart(page, CHART, (c) => num(legendValues(c)['broken.socket']) === 5));
    expect(num(values['broken.socket'])).toBe(5);
    for (const n of ['web', 'metrics', 'flappy']) expect(num(values[`${n}.socket`])).toBe(1);
  });

  it('colours failed red and active green in units by state (the dashboard picks colours by dimension order)', async () => {
    const { page: counts } = await openChart(browser!, agent!.url, COUNTS);
    try {
      // (The dashboard leaves dimensions that are 0 throughout out of the legend: starting, stopping here.)
      const has = (c: { legend: { name: string; color: string }[] }, n: string) => c.legend.some((i) => i.name === n && i.color !== '');
      const shown = await waitForChart(counts, COUNTS, (c) => has(c, 'active') && has(c, 'failed'));
      const color = Object.fromEntries(shown.legend.map((i) => [i.name, i.color]));
      console.log(`[browser] units by state colours: ${JSON.stringify(color)}`);
      expect(hue(color.failed!), `failed is ${color.failed}`).toBe('red');
      expect(hue(color.active!), `active is ${color.active}`).toBe('green');
      for (const other of ['inactive', 'starting', 'stopping']) if (color[other]) expect(hue(color[other]), `${other} is ${color[other]}`).not.toBe('red');
      if (process.env.SCREENSHOT) await counts.screenshot({ path: process.env.SCREENSHOT.replace(/(\.png)?$/, '-counts.png') });
    } finally {
      await counts.close();
    }
  });

  it('updates the legend when a socket fails while the page is open', async () => {
    const t0 = performance.now();
    await failSocket(sb!, 'flappy');
    const shown = await waitForChart(page, CHART, (c) => num(legendValues(c)['flappy.socket']) === 5, 15_000);
    times.liveFailure = since(t0);
    expect(num(legendValues(shown)['web.socket'])).toBe(1);
    await page.waitForTimeout(500); // let the graph catch up for the screenshot
  });
});
