import { beforeAll, describe, expect, it } from 'vitest';
import { expectedOutput, lines, runSample, type SampleRun } from '../support/run-sample.js';

// Each sample runs as its own process, exactly as `npm run sample:<name>` runs it (tsx with the samples'
// tsconfig), so what is checked is what a user sees.

const runs = new Map<string, Promise<SampleRun>>();
beforeAll(() => {
  // The three processes start together: each takes about a second to boot tsx.
  for (const name of ['string-dependencies', 'object-dependencies', 'suspend-propagation']) runs.set(name, runSample(name));
});

describe.each(['string-dependencies', 'object-dependencies'])('sample %s', name => {
  it('exits with code 0 and writes nothing to stderr', async () => {
    const run = await runs.get(name)!;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('prints the reference output line by line', async () => {
    const run = await runs.get(name)!;
    expect(lines(run.stdout)).toEqual(lines(expectedOutput(name)));
    // Byte for byte too: no trailing spaces, no missing final newline.
    expect(run.stdout).toBe(expectedOutput(name));
  });
});

describe('sample suspend-propagation', () => {
  it('exits with code 0, so its own assertions held', async () => {
    const run = await runs.get('suspend-propagation')!;
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
  });

  it('keeps the page cached with suspension and recomputes it without', async () => {
    const out = lines((await runs.get('suspend-propagation')!).stdout);
    const withSuspension = out.indexOf('With suspendDependencyPropagation:');
    const without = out.indexOf('Without suspendDependencyPropagation (for contrast):');
    expect(withSuspension).toBe(0);
    expect(without).toBeGreaterThan(withSuspension);
    const first = out.slice(withSuspension, without);
    const second = out.slice(without);
    expect(first).toContain('  The page entry depends on: Product:corn.');
    expect(first).toContain('  The page is still served from cache.');
    expect(second.some(line => line.startsWith('  The page entry depends on: Product:corn, ') && line.includes('Recommendations'))).toBe(true);
    expect(second).toContain('  The page is computed again.');
  });
});
