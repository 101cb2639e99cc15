import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectedOutput, lines, runSample, type SampleRun } from '../support/run-sample.js';

// The flagship sample (what `npm start` runs), as its own process exactly as `npm run sample:flagship` runs it.
// It asserts the database reads of each step itself (node:assert), so exit code 0 means they held; its output
// is compared with the recorded one, so what a first-time user reads stays what the README promises.
const expected = expectedOutput('flagship');

let run: Promise<SampleRun>;
beforeAll(() => {
  run = runSample('flagship');
});

describe('sample flagship', () => {
  it('exits with code 0 and writes nothing to stderr (no warning either), so its own assertions held', { timeout: 60_000 }, async () => {
    const { code, stderr } = await run;
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('prints the recorded output', { timeout: 60_000 }, async () => {
    const { stdout } = await run;
    expect(lines(stdout)).toEqual(lines(expected));
    expect(stdout).toBe(expected);
  });

  it('shows a nested dependency invalidating its parent, and the untouched sibling served from cache', { timeout: 60_000 }, async () => {
    const out = lines((await run).stdout);
    const update = out.findIndex(line => line.startsWith("4. updatePrice('corn', 110)"));
    const next = out.findIndex(line => line.startsWith('5. '));
    const after = out.findIndex(line => line.startsWith('6. '));
    expect(update).toBeGreaterThan(0);
    expect(out.slice(update, next)).toContain('   invalidated  ProductCatalogue.getPrice("corn"), ProductCatalogue.getPriceList()');
    const recomputation = out.slice(next, after);
    expect(recomputation).toContain('   computed     ProductCatalogue.getPriceList()');
    expect(recomputation).toContain('   computed     ProductCatalogue.getPrice("corn")');
    expect(recomputation).toContain('   from cache   ProductCatalogue.getPrice("wheat")');
    expect(recomputation).toContain('   result       corn 110, wheat 150   (2 database reads)');
  });

  it('runs the class of the README example verbatim', () => {
    // The README's Example section and the sample share the class body: a change to one must reach the other.
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8').replace(/\r\n/g, '\n');
    const sample = readFileSync(new URL('../../samples/flagship/main.ts', import.meta.url), 'utf8').replace(/\r\n/g, '\n');
    const classOf = (text: string) => {
      const start = text.indexOf('class ProductCatalogue {');
      const end = text.indexOf('\n}\n', start);
      expect(start, 'class ProductCatalogue not found').toBeGreaterThanOrEqual(0);
      return text.slice(start, end + 2);
    };
    expect(classOf(sample)).toBe(classOf(readme));
  });
});
