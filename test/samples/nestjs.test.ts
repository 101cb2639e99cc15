import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The NestJS sample, run as its own process exactly as `npm run sample:nestjs` runs it (tsx with the sample's
// own tsconfig: Nest's decorators are legacy ones). The sample starts an HTTP application, sends its own
// requests and asserts its claims (node:assert), so exit code 0 means they held; its output is compared with
// the recorded one.
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const expected = readFileSync(new URL('./expected/nestjs.txt', import.meta.url), 'utf8');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runSample(): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.NODE_OPTIONS; // the test runner's own loader options must not leak into the sample
  return new Promise(resolve => {
    execFile(process.execPath, [tsxCli, '--tsconfig', 'samples/nestjs/tsconfig.json', 'samples/nestjs/main.ts'], { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (text: string) => text.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');

let run: Promise<Run>;
beforeAll(() => {
  run = runSample();
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
