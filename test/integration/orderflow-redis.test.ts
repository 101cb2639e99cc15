import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { describeRedis, redisTopology, scanKeys, standaloneClient } from './support/redis.js';

// The orderflow sample with REDIS_URL pointing at the standalone server of the global setup (never the Redis
// on 6379): the sample's own assertions must hold on the Redis backend too, its output must match the memory
// run's line for line (apart from the header naming the backend), and it must leave no entries behind.
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runOrderflow(redisUrl: string | undefined): Promise<Run> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1' };
  delete env.NODE_OPTIONS; // the test runner's own loader options must not leak into the sample
  delete env.REDIS_URL;
  if (redisUrl !== undefined) env.REDIS_URL = redisUrl;
  return new Promise(resolve => {
    execFile(process.execPath, [tsxCli, '--tsconfig', 'samples/tsconfig.json', 'samples/orderflow/main.ts'], { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

describeRedis('sample orderflow on Redis', () => {
  it('exits with code 0, prints what the memory run prints, and leaves no entries behind', { timeout: 90_000 }, async () => {
    const topology = redisTopology();
    if (!topology.available) throw new Error('unreachable');
    const { host, port } = topology.standalone;
    expect(port).not.toBe(6379);

    const [onRedis, onMemory] = await Promise.all([runOrderflow(`redis://${host}:${port}`), runOrderflow(undefined)]);
    expect(onRedis.stderr).toBe('');
    expect(onRedis.code).toBe(0);
    expect(onMemory.code).toBe(0);

    const [header, ...rest] = onRedis.stdout.split('\n');
    const match = new RegExp(`^OrderFlow on the layered backend \\(memory over Redis at ${host.replace(/\./g, '\\.')}:${port}\\), key prefix (orderflow:\\d+:)\\.$`).exec(header ?? '');
    expect(match, header).not.toBeNull();
    expect(rest).toEqual(onMemory.stdout.split('\n').slice(1));
    expect(rest).toContain('Every invalidation check passed.');

    // The sample clears its entries and dependency indexes on exit; only invalidation markers (which expire on
    // their own) may remain under its prefix.
    const client = standaloneClient();
    const left = await scanKeys(client, match![1]!);
    expect(left.filter(key => /:ac2:\{p\d+\}:[vim]:/.test(key))).toEqual([]);
    for (const key of left) expect(await client.pttl(key), key).toBeGreaterThan(0);
  });
});
