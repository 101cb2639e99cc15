import { beforeAll, describe, expect, it } from 'vitest';
import { expectedOutput, lines, runSample, type SampleRun } from '../support/run-sample.js';

// The multi-tenant sample, run as its own process exactly as `npm run sample:multi-tenant` runs it. The sample
// asserts its own claims (node:assert: each user sees only their tenant's prices, costs only for admins, which
// methods ran at each view), so exit code 0 means they held; its output is compared with the recorded one.
const expected = expectedOutput('multi-tenant');

let run: Promise<SampleRun>;
beforeAll(() => {
  run = runSample('multi-tenant');
});

describe('sample multi-tenant', () => {
  it('exits with code 0 and writes nothing to stderr, so its own assertions held', { timeout: 60_000 }, async () => {
    const { code, stderr } = await run;
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('prints the recorded story line by line', { timeout: 60_000 }, async () => {
    const { stdout } = await run;
    expect(lines(stdout)).toEqual(lines(expected));
    expect(stdout).toBe(expected);
  });

  it('shows each tenant only its own currency, and costs only to admins', { timeout: 60_000 }, async () => {
    const views = lines((await run).stdout).filter(line => /^ {2}\w+ \((acme|globex), /.test(line));
    expect(views.length).toBeGreaterThanOrEqual(10);
    for (const line of views) {
      const [, tenant, roles] = /^ {2}\w+ \((acme|globex), ([^)]*)\)/.exec(line)!;
      expect(line).toContain(tenant === 'acme' ? 'EUR' : 'USD');
      expect(line).not.toContain(tenant === 'acme' ? 'USD' : 'EUR');
      expect(line.includes('cost'), line).toBe(roles!.split(', ').includes('admin'));
    }
  });
});
