// The agent's own dashboard (Netdata 1.37.1's classic one, served at http://HOST:PORT/) in headless
// Debian chromium, driven by playwright-core: open it at one chart, read the chart's legend (the
// dimension names and their latest values, as the dashboard renders them), take a screenshot.
// Shared by test/e2e/browser.test.ts and scripts/demo.sh (--screenshot). Never downloads a browser:
// it uses the system's chromium (apt-get install chromium, or scripts/install-test-deps.sh
// --with-browser). Requests to anything but the agent are refused, so the page never waits on the
// network (the dashboard otherwise calls the registry, GitHub and a news feed).
//
// Command line:
//   tsx scripts/dashboard.ts --url http://127.0.0.1:19999 --chart CHART_ID [--out FILE.png]
//                            [--window SECONDS] [--expect DIM=VALUE]… [--timeout SECONDS]
// prints the legend, one "name value" line each, once every --expect holds (the dimension's value
// in the legend, e.g. broken.socket=5), saves the screenshot to --out; exits 1 (with the reason) if
// the chart is not rendered so in time.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export function haveChromium(): boolean {
  return existsSync(CHROMIUM);
}

export function launchChromium(): Promise<Browser> {
  if (!haveChromium()) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or scripts/install-test-deps.sh --with-browser)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
}

export interface LegendItem {
  /** the dimension name as the legend shows it */
  name: string;
  /** its latest value as the legend shows it ("5.00" or "5", depending on the range), "-" before
   * the first data */
  value: string;
}

export interface RenderedChart {
  /** the chart's title line inside the graph */
  title: string;
  legend: LegendItem[];
  /** canvases dygraph drew into (0 means the graph was not rendered) */
  canvases: number;
}

/** How the classic dashboard turns names into element ids. */
const name2id = (s: string) => s.replace(/[^a-zA-Z0-9]/g, '_');

/**
 * The dashboard URL that opens at the chart's section (menu = chart type, submenu = family) and
 * shows the last `windowSeconds` (the default 15 min window would squeeze a young chart into a
 * sliver at the right edge).
 */
export function chartUrl(baseUrl: string, chart: { type: string; family: string }, windowSeconds = 60): string {
  const anchor = name2id(`menu_${chart.type}_submenu_${chart.family}`);
  return `${baseUrl.replace(/\/+$/, '')}/#${anchor};after=-${windowSeconds};before=0`;
}

export interface OpenOptions {
  windowSeconds?: number;
  viewport?: { width: number; height: number };
  /** how long to wait for the chart's element (default 30 s) */
  timeoutMs?: number;
}

/**
 * Opens the agent's dashboard at the chart (type and family are read from the agent's API) and
 * waits until the chart's element is on the page. The caller closes the page (or the browser).
 */
export async function openChart(browser: Browser, baseUrl: string, chartId: string, opts: OpenOptions = {}): Promise<{ page: Page; url: string }> {
  const origin = new URL(baseUrl).origin;
  const res = await fetch(`${origin}/api/v1/chart?chart=${encodeURIComponent(chartId)}`, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`the agent at ${origin} has no chart ${chartId} (HTTP ${res.status})`);
  const info = (await res.json()) as { type: string; family: string };
  const url = chartUrl(origin, info, opts.windowSeconds);
  const page = await browser.newPage({ viewport: opts.viewport ?? { width: 1400, height: 1000 } });
  await page.route((u) => u.origin !== origin, (route) => route.abort());
  await page.goto(url, { waitUntil: 'domcontentloaded' });
  await page.locator(chartSelector(chartId)).first().waitFor({ state: 'visible', timeout: opts.timeoutMs ?? 30_000 });
  return { page, url };
}

export function chartSelector(chartId: string): string {
  return `[data-netdata="${chartId}"]`;
}

// Runs in the page. Kept as source text: a function passed from here would carry the helpers a
// TypeScript loader adds (tsx's __name), which do not exist in the page.
const READ_CHART = `(el) => {
  const text = (e) => ((e && e.textContent) || '').trim();
  // The bottom legend: one item per dimension, a label and the latest value.
  const legend = [...el.querySelectorAll('[class*="__DimensionItem-"]')].map((item) => ({
    name: text(item.querySelector('[class*="__DimensionLabel-"]')),
    value: text(item.querySelector('[class*="__DimensionValue-"]')),
  }));
  return { title: text(el.querySelector('.dygraph-title')), legend, canvases: el.querySelectorAll('canvas').length };
}`;

/** What the dashboard currently shows for the chart. */
export async function readChart(page: Page, chartId: string): Promise<RenderedChart> {
  const sel = JSON.stringify(chartSelector(chartId));
  const shown = await page.evaluate(`(() => { const el = document.querySelector(${sel}); return el && (${READ_CHART})(el); })()`);
  if (!shown) throw new Error(`no element ${chartSelector(chartId)} on the page`);
  return shown as RenderedChart;
}

/**
 * Polls readChart until `ready` accepts what the dashboard shows; throws with the last rendering
 * on timeout.
 */
export async function waitForChart(page: Page, chartId: string, ready: (c: RenderedChart) => boolean, timeoutMs = 30_000): Promise<RenderedChart> {
  const deadline = Date.now() + timeoutMs;
  let last: RenderedChart | undefined;
  let error: unknown;
  for (;;) {
    try {
      last = await readChart(page, chartId);
      if (ready(last)) return last;
    } catch (err) {
      error = err;
    }
    if (Date.now() > deadline) {
      const seen = last ? JSON.stringify(last) : `nothing (${error instanceof Error ? error.message : String(error)})`;
      throw new Error(`the dashboard did not render ${chartId} as expected within ${timeoutMs} ms; last seen: ${seen}`);
    }
    await page.waitForTimeout(200);
  }
}

/** Legend as a name → value map. */
export function legendValues(c: RenderedChart): Record<string, string> {
  return Object.fromEntries(c.legend.map((i) => [i.name, i.value]));
}

// ---- command line -------------------------------------------------------------------------------
async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      url: { type: 'string', default: 'http://127.0.0.1:19999' },
      chart: { type: 'string', default: 'systemdunits_service_units.socket_unit_state' },
      out: { type: 'string' },
      window: { type: 'string', default: '60' },
      expect: { type: 'string', multiple: true, default: [] },
      timeout: { type: 'string', default: '30' },
    },
  });
  const chartId = values.chart!;
  const expected = values.expect!.map((e) => {
    const i = e.lastIndexOf('=');
    if (i < 1) throw new Error(`--expect wants DIM=VALUE, got '${e}'`);
    return [e.slice(0, i), e.slice(i + 1)] as const;
  });
  const browser = await launchChromium();
  try {
    const { page, url } = await openChart(browser, values.url!, chartId, { windowSeconds: Number(values.window) });
    console.log(`dashboard ${url}`);
    let shown: RenderedChart;
    try {
      shown = await waitForChart(
        page,
        chartId,
        (c) => c.canvases > 0 && c.legend.length > 0 && c.legend.every((i) => i.value !== '-' && i.value !== '') &&
          expected.every(([d, v]) => Number(legendValues(c)[d]) === Number(v)),
        Number(values.timeout) * 1000,
      );
    } catch (err) {
      // The picture still helps to see what went wrong.
      if (values.out) await page.screenshot({ path: values.out }).then(() => console.log(`screenshot ${values.out} (as it was)`), () => {});
      throw err;
    }
    await page.waitForTimeout(500); // let dygraph finish drawing the lines
    if (values.out) await page.screenshot({ path: values.out });
    console.log(`chart ${shown.title}`);
    for (const i of shown.legend) console.log(`  ${i.name} ${i.value}`);
    if (values.out) console.log(`screenshot ${values.out}`);
  } finally {
    await browser.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  main().catch((err: Error) => {
    console.error(`dashboard: ${err.message}`);
    process.exit(1);
  });
}
