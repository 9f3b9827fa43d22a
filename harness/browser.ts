// The agent's own dashboard (Netdata 1.37.1's classic one, served at http://HOST:PORT/) in headless
// Debian chromium, driven by playwright-core: open it at one chart, read the chart's legend (the
// dimension names and their latest values, as the dashboard renders them), take a screenshot.
// Shared by test/e2e/browser.test.ts and scripts/demo/dashboard.ts (demo.sh --screenshot). Never
// downloads a browser: it uses the system's chromium (apt-get install chromium, or
// scripts/install/install-test-deps.sh --with-browser). Requests to anything but the agent are
// refused, so the page never waits on the network (the dashboard otherwise calls the registry,
// GitHub and a news feed).
import { existsSync } from 'node:fs';
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
  if (!haveChromium()) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or scripts/install/install-test-deps.sh --with-browser)`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 60_000 });
}

export interface LegendItem {
  /** the dimension name as the legend shows it */
  name: string;
  /** its latest value as the legend shows it ("5.00" or "5", depending on the range), "-" before
   * the first data */
  value: string;
  /** the colour of its swatch as the page computed it (`rgb(r, g, b)`), '' where there is none */
  color: string;
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
    color: ((i) => (i ? getComputedStyle(i).backgroundColor : ''))(item.querySelector('[class*="__DimensionIcon-"]')),
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
