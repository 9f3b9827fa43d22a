// The figures table: one row per metric, a column per tool, and the ratios peer / plugin.

export type Cell = number | undefined;

export interface Row {
  metric: string;
  /** plugin, node_exporter, check_systemd */
  values: [Cell, Cell, Cell];
  /** printed values, when they are not plain numbers (e.g. "9/20 (45%)") */
  text?: [string?, string?, string?];
  /** decimals for printing */
  digits?: number;
  /** no ratio column for this row */
  noRatio?: boolean;
  /**
   * Measurement resolution: a plugin value below it is shown as "<res" and the ratio as a lower
   * bound ">N×" computed against the resolution.
   */
  resolution?: number;
}

export interface RatioCell {
  value: number | undefined;
  /** true when the plugin's value is below the resolution: the true ratio is at least `value` */
  lowerBound: boolean;
}

export function ratio(row: Row, peer: 1 | 2): RatioCell {
  const p = row.values[0];
  const q = row.values[peer];
  if (row.noRatio || p === undefined || q === undefined || !Number.isFinite(p) || !Number.isFinite(q)) return { value: undefined, lowerBound: false };
  const res = row.resolution ?? 0;
  if (p < res || p <= 0) {
    if (res <= 0 || q < res) return { value: undefined, lowerBound: false };
    return { value: q / res, lowerBound: true };
  }
  return { value: q / p, lowerBound: false };
}

function fmtNum(v: Cell, digits: number, res?: number, isPlugin = false): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  if (isPlugin && res !== undefined && v < res) return `<${res}`;
  return v.toFixed(digits);
}

function fmtRatio(r: RatioCell): string {
  if (r.value === undefined) return '';
  const v = r.value;
  const s = v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return (r.lowerBound ? '>' : '') + s + '×';
}

export function formatTable(rows: readonly Row[]): string {
  const head = ['', 'plugin', 'node_exporter', 'check_systemd', 'ne/plugin', 'cs/plugin'];
  const body = rows.map((r) => {
    const d = r.digits ?? 2;
    const cells = [0, 1, 2].map((i) => r.text?.[i] ?? fmtNum(r.values[i], d, r.resolution, i === 0));
    return [r.metric, ...cells, fmtRatio(ratio(r, 1)), fmtRatio(ratio(r, 2))];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

export function tableJson(rows: readonly Row[]): object[] {
  return rows.map((r) => {
    const ne = ratio(r, 1);
    const cs = ratio(r, 2);
    return {
      metric: r.metric,
      plugin: r.text?.[0] ?? r.values[0] ?? null,
      node_exporter: r.text?.[1] ?? r.values[1] ?? null,
      check_systemd: r.text?.[2] ?? r.values[2] ?? null,
      node_exporter_per_plugin: ne.value ?? null,
      check_systemd_per_plugin: cs.value ?? null,
      ratio_is_lower_bound: ne.lowerBound || cs.lowerBound || undefined,
    };
  });
}
