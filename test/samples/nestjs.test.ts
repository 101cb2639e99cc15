import { beforeAll, describe, expect, it } from 'vitest';
import { expectedOutput, lines, runSample, type SampleRun } from '../support/run-sample.js';

// The NestJS sample, run as its own process exactly as `npm run sample:nestjs` runs it (tsx with the sample's
// own tsconfig: Nest's decorators are legacy ones). The sample starts an HTTP application, sends its own
// requests and asserts its claims (node:assert), so exit code 0 means they held; its output is compared with
// the recorded one.
const expected = expectedOutput('nestjs');

let run: Promise<SampleRun>;
beforeAll(() => {
  run = runSample('nestjs', 'samples/nestjs/tsconfig.json');
});

describe('sample nestjs', () => {
  it('exits with code 0 and writes nothing to stderr, so its own assertions held', { timeout: 60_000 }, async () => {
    const { code, stderr } = await run;
    expect(stderr).toBe('');
    expect(code).toBe(0);
  });

  it('prints the recorded output line by line', { timeout: 60_000 }, async () => {
    const { stdout } = await run;
    expect(lines(stdout)).toEqual(lines(expected));
  });

  it('serves repeated reads from the cache and recomputes what the price change invalidated', { timeout: 60_000 }, async () => {
    const out = lines((await run).stdout);
    const after = (request: string, nth = 1) => {
      let seen = 0;
      const i = out.findIndex(line => line.startsWith(request) && ++seen === nth);
      return out[i + 1]!.trim();
    };
    expect(after('GET /products/corn', 2)).toBe('database queries: 0, cache hits: 1, misses: 0');
    expect(after('GET /products/cheapest', 2)).toBe('database queries: 0, cache hits: 1, misses: 0');
    // After PUT /products/corn/price: corn, the list built from it and the route cached over the list recompute.
    expect(after('GET /products/corn', 3)).toBe('database queries: 1, cache hits: 0, misses: 1');
    expect(out.find(line => line.startsWith('GET /products/cheapest') && line.includes('"rice"'))).toBeDefined();
  });
});
