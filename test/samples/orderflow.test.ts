import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runSample, type SampleRun } from '../support/run-sample.js';

// The orderflow sample on the memory backend, run as its own process exactly as `npm run sample:orderflow`
// runs it. The sample asserts its own invalidations (node:assert), so exit code 0 means they all held; the
// lines checked here are the ones a reader of its output relies on.

/** The lines of one numbered section ("4. …") up to the next blank line. */
function section(lines: string[], number: number): string[] {
  const start = lines.findIndex(line => line.startsWith(`${number}. `));
  expect(start, `section ${number}`).toBeGreaterThanOrEqual(0);
  const end = lines.indexOf('', start);
  return lines.slice(start, end < 0 ? undefined : end);
}

/** The outcome printed for a read in a section, e.g. 'cache hit' or 'computed: 4 database reads, …'. */
function outcome(lines: string[], call: string): string {
  const line = lines.find(l => l.trimStart().startsWith(call));
  expect(line, `a line for ${call}`).toBeDefined();
  return line!;
}

let run: Promise<SampleRun>;
beforeAll(() => {
  run = runSample('orderflow', undefined, { REDIS_URL: undefined }); // the memory backend, whatever the shell says
});

describe('sample orderflow (memory backend)', () => {
  it('exits with code 0 and writes nothing to stderr, so its own assertions held', { timeout: 60_000 }, async () => {
    const { code, stderr, stdout } = await run;
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toContain('Every invalidation check passed.');
  });

  it('prints the output shown in its README', { timeout: 60_000 }, async () => {
    const readme = readFileSync(new URL('../../samples/orderflow/README.md', import.meta.url), 'utf8').replace(/\r\n/g, '\n');
    const block = /## Output \(memory backend\)\n[\s\S]*?```\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README.md has an "Output (memory backend)" code block').not.toBeNull();
    expect((await run).stdout).toBe(block![1]);
  });

  it('runs on the memory backend and warms the catalogue and the featured products', { timeout: 60_000 }, async () => {
    const lines = (await run).stdout.split('\n');
    expect(lines[0]).toBe('OrderFlow on the memory backend.');
    expect(lines).toContain('  Warmed 4 entries with 4 database reads.');
    const browsing = section(lines, 1);
    expect(outcome(browsing, 'getCatalogue()')).toMatch(/cache hit$/);
    expect(outcome(browsing, "getProduct('grinder')")).toMatch(/cache hit$/);
  });

  it('keys order details by requester', { timeout: 60_000 }, async () => {
    const details = section((await run).stdout.split('\n'), 2);
    const views = details.filter(line => line.trimStart().startsWith("getOrderDetail('o-1002'"));
    expect(views).toHaveLength(3);
    expect(views[0]).toMatch(/^ {2}getOrderDetail\('o-1002', alice\) +placed, 2 lines, €118\.50 +computed: 1 database read/);
    expect(views[1]).toMatch(/^ {2}getOrderDetail\('o-1002', sam\) +placed, 2 lines, €118\.50 \+ pay_9X4K +computed: 2 database reads/);
    expect(views[2]).toMatch(/^ {2}getOrderDetail\('o-1002', alice\) +placed, 2 lines, €118\.50 +cache hit$/);
    expect(outcome(details, "getOrderDetail('o-1001', bob)")).toContain('refused');
  });

  it('after ProductPriceChanged, recomputes the summary of the customer who ordered the product, not the other one', { timeout: 60_000 }, async () => {
    const priceChange = section((await run).stdout.split('\n'), 4);
    expect(priceChange).toContain('  Invalidated 5 entries:');
    expect(priceChange).toContain('    CatalogueQueries.getProduct("grinder")');
    expect(priceChange).toContain('    OrderQueries.getCustomerSummary("alice")');
    expect(priceChange).not.toContain('    OrderQueries.getCustomerSummary("bob")');
    expect(outcome(priceChange, "getCustomerSummary('alice')")).toMatch(/1 open \(€108\.50\).* computed: /);
    expect(outcome(priceChange, "getCustomerSummary('bob')")).toMatch(/cache hit$/);
    expect(outcome(priceChange, 'getCatalogue()')).toMatch(/grinder €89\.00 +computed: 1 database read$/);
  });

  it('after OrderShipped, OrderPlaced and an @InvalidateCache write, invalidates only what they affect', { timeout: 60_000 }, async () => {
    const lines = (await run).stdout.split('\n');
    const shipped = section(lines, 5);
    expect(outcome(shipped, "getCustomerSummary('alice')")).toMatch(/0 open \(€0\.00\), €168\.50 spent +computed: /);
    expect(outcome(shipped, "getCustomerSummary('bob')")).toMatch(/cache hit$/);
    const placed = section(lines, 6);
    expect(placed).toEqual(expect.arrayContaining(['  Invalidated 1 entry:', '    OrderQueries.getCustomerSummary("bob")']));
    expect(outcome(placed, "getCustomerSummary('bob')")).toMatch(/2 orders, 2 open \(€93\.00\).* computed: /);
    expect(outcome(placed, "getCustomerSummary('alice')")).toMatch(/cache hit$/);
    const described = section(lines, 7);
    expect(described).toContain('  Invalidated 3 entries:');
    expect(outcome(described, "getCustomerSummary('bob')")).toContain('computed: ');
    expect(outcome(described, "getCustomerSummary('alice')")).toMatch(/cache hit$/);
    expect(outcome(described, 'getCatalogue()')).toMatch(/cache hit$/);
  });
});
