/** Medians, percentiles, pairwise ratios, and the printed table. */

export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile of already sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

export interface Target {
  /** podserve / reference must be ≤ (lower is better) or ≥ (higher is better) this. */
  ratio: number;
}

export interface MetricSpec {
  key: string;
  label: string;
  unit: string;
  better: 'lower' | 'higher';
  target?: Target;
  /** How the samples were taken (sizes, repetitions), shown in the JSON. */
  note?: string;
}

export interface Metric extends MetricSpec {
  /** One value per repetition, index-paired with `reference` (A B A B …). */
  podserve: number[];
  reference: number[];
}

export interface MetricSummary extends MetricSpec {
  podserve: number;
  reference: number;
  /** Median of the pairwise ratios podserve_i / reference_i. */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
  samples: { podserve: number[]; reference: number[] };
  met?: boolean;
}

export function summarize(m: Metric): MetricSummary {
  const pairs = Math.min(m.podserve.length, m.reference.length);
  const ratios: number[] = [];
  for (let i = 0; i < pairs; i++) ratios.push(m.podserve[i]! / m.reference[i]!);
  const ratio = median(ratios);
  const { podserve, reference, ...spec } = m;
  const summary: MetricSummary = {
    ...spec,
    podserve: median(podserve),
    reference: median(reference),
    ratio,
    ratioMin: ratios.length ? Math.min(...ratios) : NaN,
    ratioMax: ratios.length ? Math.max(...ratios) : NaN,
    samples: { podserve, reference },
  };
  if (m.target && Number.isFinite(ratio)) summary.met = m.better === 'lower' ? ratio <= m.target.ratio : ratio >= m.target.ratio;
  return summary;
}

export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return '–';
  const abs = Math.abs(v);
  if (abs >= 1000) return Math.round(v).toLocaleString('en-US');
  if (abs >= 100) return v.toFixed(0);
  if (abs >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function formatRatio(v: number): string {
  return Number.isFinite(v) ? `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}×` : '–';
}

/** The table as Markdown (printed to the terminal and copied into bench/README.md). */
export function markdownTable(rows: readonly MetricSummary[], referenceName: string): string {
  const lines = [
    `| measurement | unit | podserve | ${referenceName} | ratio (min–max) | target | met |`,
    '| --- | --- | ---: | ---: | ---: | ---: | :---: |',
  ];
  for (const r of rows) {
    const range = Number.isFinite(r.ratioMin) && r.ratioMin !== r.ratioMax ? ` (${formatRatio(r.ratioMin)}–${formatRatio(r.ratioMax)})` : '';
    const target = r.target ? `${r.better === 'lower' ? '≤' : '≥'} ${r.target.ratio}×` : '';
    const met = r.met === undefined ? '' : r.met ? 'yes' : '**no**';
    lines.push(`| ${r.label} | ${r.unit} | ${formatNumber(r.podserve)} | ${formatNumber(r.reference)} | ${formatRatio(r.ratio)}${range} | ${target} | ${met} |`);
  }
  return lines.join('\n');
}
