// Writes bench/RESULTS-layered.md from the results of bench/layered.bench.ts. Generated on every run: do not
// edit the output by hand, rerun `npm run bench:layered` instead.
import { writeFileSync } from 'node:fs';
import { installedVersion, redisPackageVersions, renderSuiteResults, type RedisResultRow as ResultRow, type RedisTargetCheck as TargetCheck } from './redis-report.js';

export type { ResultRow, TargetCheck };

export interface LayeredBenchReport {
  readonly mode: 'quick' | 'full';
  readonly rounds: number;
  readonly decoratorMode: string;
  readonly startedAt: Date;
  readonly finishedAt: Date;
  readonly loadBefore: readonly number[];
  readonly loadAfter: readonly number[];
  /** Git revision when the run started (see gitRevision). */
  readonly revision: string;
  /** What ran besides the packages: redis-server, connections, the second process. */
  readonly setup: Readonly<Record<string, string>>;
  readonly tables: ReadonlyArray<{ readonly title: string; readonly intro?: string; readonly rows: readonly ResultRow[] }>;
  readonly targets: readonly TargetCheck[];
  readonly findings: readonly string[];
  readonly notes: readonly string[];
}

/** Installed versions of what the layered benchmark runs (read from node_modules: what actually ran). */
export function layeredPackageVersions(): Record<string, string> {
  return { ...redisPackageVersions(), bentocache: installedVersion('bentocache'), '@boringnode/bus': installedVersion('@boringnode/bus') };
}

export function renderLayeredResults(report: LayeredBenchReport): string {
  return renderSuiteResults(report, {
    title: 'layered backend (memory L1 + Redis L2 + invalidation bus)',
    bench: 'bench/layered.bench.ts',
    report: 'bench/layered-report.ts',
    script: 'npm run bench:layered',
    findingsTitle: 'Findings (computed from this run)',
    setup: { ...report.setup, ...layeredPackageVersions() },
  });
}

export function writeLayeredResults(path: string, report: LayeredBenchReport): void {
  writeFileSync(path, renderLayeredResults(report));
}
