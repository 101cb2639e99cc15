// Invalidation on a real 3-master Redis Cluster (3 masters, 3 replicas, started here and stopped at the end):
// fills N entries that depend on one key, then times `await service.invalidate(key)`, for N = 1, 100 and
// 10,000, over several rounds; reports the median of every sample and of each round's median, with the same
// measurement on a standalone server started alongside (the floor a cluster is compared with).
// Run: npm run bench:redis-cluster (BENCH_QUICK=1 for fewer rounds). Writes bench/RESULTS-redis-cluster.md.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis } from 'ioredis';
import { addDependency, Cache, CachingService, bindCachingService } from '../src/index.js';
import { RedisBackend } from '../src/redis.js';
import { findRedisBinaries, HOST, redisServerVersion, startCluster, startOnFreePort, type RedisServerProcess } from '../test/integration/support/redis-process.js';

const QUICK = process.env.BENCH_QUICK === '1';
const ROUNDS = QUICK ? 2 : 5;
const SAMPLES: Record<number, number> = { 1: QUICK ? 10 : 20, 100: QUICK ? 5 : 10, 10_000: QUICK ? 2 : 3 };
const SIZES = [1, 100, 10_000];
const CONCURRENCY = 64;

class Dependents {
  @Cache({ ttl: 600_000 })
  async value(dependency: string, i: number): Promise<number> {
    addDependency(dependency);
    return i;
  }
}

async function pool(n: number, concurrency: number, run: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) await run(next++);
  }));
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function measure(label: string, client: Redis | Cluster): Promise<Map<number, { all: number[]; rounds: number[] }>> {
  const service = new CachingService({ backend: new RedisBackend({ client, keyPrefix: `bench-${label}:` }), telemetry: false });
  const dependents = bindCachingService(new Dependents(), service);
  const results = new Map(SIZES.map(n => [n, { all: [] as number[], rounds: [] as number[] }]));
  let tag = 0;
  await pool(100, CONCURRENCY, i => dependents.value('Warm-up', i));
  await service.invalidate('Warm-up');
  for (let round = 0; round < ROUNDS; round++) {
    for (const n of SIZES) {
      const samples: number[] = [];
      for (let s = 0; s < SAMPLES[n]!; s++) {
        const key = `Group:${tag++}`;
        await pool(n, CONCURRENCY, i => dependents.value(key, i));
        if (n >= 10_000) (globalThis as { gc?: () => void }).gc?.();
        const removedBefore = service.stats().invalidatedEntries;
        const t0 = process.hrtime.bigint();
        await service.invalidate(key);
        samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
        const removed = service.stats().invalidatedEntries - removedBefore;
        if (removed !== n) throw new Error(`bench bug: invalidating ${key} removed ${removed} of ${n} dependents.`);
      }
      results.get(n)!.all.push(...samples);
      results.get(n)!.rounds.push(median(samples));
    }
    console.log(`${label}, round ${round + 1}: ${SIZES.map(n => `${n} → ${median(results.get(n)!.rounds).toFixed(2)} ms`).join(', ')}`);
  }
  await service.dispose();
  return results;
}

async function main(): Promise<void> {
  const bin = findRedisBinaries();
  if ('missing' in bin) throw new Error(`bench:redis-cluster needs redis-server and redis-cli: ${bin.missing}`);
  const version = await redisServerVersion(bin.server);
  const root = mkdtempSync(path.join(os.tmpdir(), 'aspect-cache-bench-cluster-'));
  const started: RedisServerProcess[] = [];
  try {
    const [standalone] = await Promise.all([
      startOnFreePort(bin, port => path.join(root, `standalone-${port}`), () => [], started),
      startCluster(bin, port => path.join(root, `cluster-${port}`), started),
    ]);
    const clusterPorts = started.filter(s => s !== standalone).map(s => s.port);
    const single = new Redis({ host: HOST, port: standalone.port });
    const cluster = new Cluster(clusterPorts.map(port => ({ host: HOST, port })));
    await cluster.ping();
    const onStandalone = await measure('standalone', single);
    const onCluster = await measure('cluster', cluster);
    single.disconnect();
    cluster.disconnect();

    const rows = SIZES.map(n => {
      const s = onStandalone.get(n)!;
      const c = onCluster.get(n)!;
      return `| ${n.toLocaleString('en-US')} | ${median(s.rounds).toFixed(2)} ms (${median(s.all).toFixed(2)} over ${s.all.length}) | ${median(c.rounds).toFixed(2)} ms (${median(c.all).toFixed(2)} over ${c.all.length}) | ${(median(c.rounds) / median(s.rounds)).toFixed(2)}× |`;
    });
    const big = median(onCluster.get(10_000)!.rounds);
    const bigStandalone = median(onStandalone.get(10_000)!.rounds);
    const text = `# Invalidation on a Redis Cluster

Generated by \`npm run bench:redis-cluster\`${QUICK ? ' (BENCH_QUICK=1)' : ''} on ${new Date().toISOString().slice(0, 10)}.
Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, shared with other work; Node ${process.version}, Redis ${version}.
A 3-master cluster (3 replicas) and a standalone server, both started by the benchmark on loopback. RedisBackend defaults:
1 partition on the standalone server, 16 on the cluster. Each sample fills N entries that depend on one fresh key
(${CONCURRENCY} concurrent callers), then times \`await service.invalidate(key)\`; ${ROUNDS} rounds, the value is the median of the
rounds' medians (in brackets: the median of all samples).

| dependents | standalone | 3-master cluster | cluster / standalone |
|---|---|---|---|
${rows.join('\n')}

| target (issue 13) | measured | |
|---|---|---|
| invalidating 10,000 dependents ≤ 20 ms on standalone | ${bigStandalone.toFixed(1)} ms | ${bigStandalone <= 20 ? 'PASS' : 'FAIL'} |
| invalidating 10,000 dependents ≤ 100 ms on the 3-master cluster | ${big.toFixed(1)} ms | ${big <= 100 ? 'PASS' : 'FAIL'} |
`;
    writeFileSync(new URL('./RESULTS-redis-cluster.md', import.meta.url), text);
    console.log(`\n${text}`);
  } finally {
    await Promise.all(started.map(server => server.stop().catch(() => server.kill())));
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
