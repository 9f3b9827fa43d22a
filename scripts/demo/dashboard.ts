// The agent's own dashboard from the command line (used by scripts/demo/demo.sh --screenshot): open
// it in headless Debian chromium at one chart, wait until its legend shows what --expect asks, print
// the legend and save a screenshot. The browser driving lives in harness/browser.ts.
//
// Command line:
//   tsx scripts/demo/dashboard.ts --url http://127.0.0.1:19999 --chart CHART_ID [--out FILE.png]
//                                 [--window SECONDS] [--expect DIM=VALUE]… [--timeout SECONDS]
// prints the legend, one "name value" line each, once every --expect holds (the dimension's value
// in the legend, e.g. broken.socket=5), saves the screenshot to --out; exits 1 (with the reason) if
// the chart is not rendered so in time.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { launchChromium, legendValues, openChart, waitForChart, type RenderedChart } from '../../harness/browser.js';

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
