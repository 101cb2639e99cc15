// Draws bench/peers-chart.svg from bench/peers-results.json (written by bench/peers.bench.ts): one horizontal
// bar chart per scenario, ns/op on a log scale per scenario (the contenders span two orders of magnitude), hand-written SVG.
//
//   node --import tsx bench/chart.ts          (npm run bench:peers also writes the chart after the results)
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Row {
  readonly scenario: string;
  readonly id: string;
  readonly label: string;
  readonly kind: 'floor' | 'subject' | 'peer';
  readonly ns: number;
  readonly toAspect: number;
}
interface Results {
  readonly date: string;
  readonly mode: string;
  readonly rounds: number;
  readonly node: string;
  readonly loadBefore: readonly number[];
  readonly rows: readonly Row[];
}

const SCENARIOS: readonly [string, string][] = [
  ['hit', 'Memory hit (warm key), ns/op — lower is better'],
  ['miss', 'Memory miss (fresh key, value stored), ns/op — lower is better'],
  ['redisSeq', 'Redis hit, sequential, ns/op — lower is better'],
  ['redisC64', 'Redis hit, 64 concurrent callers, wall ns per call — lower is better'],
];
const COLORS = { floor: '#9e9e9e', subject: '#d9480f', peer: '#1c7ed6' } as const;

const WIDTH = 1000;
const LABEL_W = 430;
const BAR_MAX = WIDTH - LABEL_W - 210;
const ROW_H = 22;
const TITLE_H = 34;
const GAP = 20;

const escape = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
const format = (ns: number) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : ns >= 100 ? `${ns.toFixed(0)} ns` : `${ns.toFixed(1)} ns`);

export function renderChart(results: Results): string {
  const sections = SCENARIOS.map(([key, title]) => ({ title, rows: results.rows.filter(r => r.scenario === key).sort((a, b) => a.ns - b.ns) })).filter(s => s.rows.length > 0);
  // Log scale per section, from half a decade below its fastest contender to its slowest.
  const scale = (rows: readonly Row[]) => {
    const lo = Math.log10(Math.min(...rows.map(r => r.ns))) - 0.5;
    const hi = Math.log10(Math.max(...rows.map(r => r.ns)));
    return (ns: number) => Math.max(2, ((Math.log10(ns) - lo) / Math.max(hi - lo, 1e-9)) * BAR_MAX);
  };

  const parts: string[] = [];
  let y = 50;
  for (const section of sections) {
    parts.push(`<text x="10" y="${y + 18}" font-size="15" font-weight="bold">${escape(section.title)}</text>`);
    y += TITLE_H;
    const barWidth = scale(section.rows);
    for (const row of section.rows) {
      const w = barWidth(row.ns);
      const ratio = row.id === 'aspect-cache' ? '' : ` (${row.toAspect.toFixed(2)}× aspect-cache)`;
      parts.push(`<text x="${LABEL_W - 8}" y="${y + 15}" font-size="12" text-anchor="end"${row.kind === 'subject' ? ' font-weight="bold"' : ''}>${escape(row.label)}</text>`);
      parts.push(`<rect x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${COLORS[row.kind]}"/>`);
      parts.push(`<text x="${(LABEL_W + w + 6).toFixed(1)}" y="${y + 15}" font-size="12">${escape(format(row.ns) + ratio)}</text>`);
      y += ROW_H;
    }
    y += GAP;
  }
  const header = `aspect-cache vs peers — ${results.mode} run, ${results.rounds} round(s), Node ${results.node}, ${results.date.slice(0, 10)}, load average ${results.loadBefore.map(x => x.toFixed(2)).join(' / ')}`;
  const legend = 'Log scale per section. Grey: floors, orange: aspect-cache, blue: peers. Source: bench/RESULTS-peers.md';
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="18" font-size="12" fill="#444">${escape(header)}</text>`,
    `<text x="10" y="34" font-size="12" fill="#444">${escape(legend)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

const isMain = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1];
if (isMain) {
  const input = fileURLToPath(new URL('./peers-results.json', import.meta.url));
  const output = fileURLToPath(new URL('./peers-chart.svg', import.meta.url));
  writeFileSync(output, renderChart(JSON.parse(readFileSync(input, 'utf8')) as Results));
  console.log(`wrote ${output}`);
}
