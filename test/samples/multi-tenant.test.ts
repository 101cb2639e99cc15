import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

// The multi-tenant sample, run as its own process exactly as `npm run sample:multi-tenant` runs it. The sample
// asserts its own claims (node:assert: each user sees only their tenant's prices, costs only for admins, which
// methods ran at each view), so exit code 0 means they held; its output is compared with the recorded one.
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const expected = readFileSync(new URL('./expected/multi-tenant.txt', import.meta.url), 'utf8');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runSample(): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.NODE_OPTIONS; // the test runner's own loader options must not leak into the sample
  return new Promise(resolve => {
    execFile(process.execPath, [tsxCli, '--tsconfig', 'samples/tsconfig.json', 'samples/multi-tenant/main.ts'], { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
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
