// Global setup of the 'redis' vitest project: starts a standalone redis-server and a 3-master + 3-replica Redis
// Cluster on free loopback ports, provides their addresses to the tests (`inject('redis')`), and stops them
// afterwards. Without redis-server the Redis tests are skipped loudly — except in CI (CI=true), where the run
// fails. Never touches the Redis on port 6379.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findRedisBinaries, HOST, redisServerVersion, startCluster, startOnFreePort, unwatchDir, watchDir, type RedisServerProcess } from './redis-process.js';
import type { RedisTopology } from './topology.js';

const MIN_MAJOR_VERSION = 5; // `redis-cli --cluster create`

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: RedisServerProcess[] = [];
  let root: string | undefined;

  const teardown = async () => {
    const stoppingAt = Date.now();
    await Promise.all(started.map(server => server.stop().catch(() => server.kill())));
    if (root) {
      rmSync(root, { recursive: true, force: true });
      unwatchDir(root);
    }
    if (process.env.ASPECT_CACHE_REDIS_DEBUG) console.log(`redis: stopped ${started.length} servers in ${Date.now() - stoppingAt} ms`);
  };

  const unavailable = (reason: string): (() => Promise<void>) => {
    if (process.env.CI === 'true') {
      throw new Error(`CI requires redis-server: ${reason}. Install redis-server and redis-cli (e.g. apt-get install redis-server redis-tools).`);
    }
    console.warn(`\n⚠️  REDIS TESTS SKIPPED: ${reason}. Install redis-server and redis-cli to run them (in CI they are required).\n`);
    project.provide('redis', { available: false, reason } satisfies RedisTopology);
    return async () => undefined;
  };

  const bin = findRedisBinaries();
  if ('missing' in bin) return unavailable(bin.missing);
  let version: string;
  try {
    version = await redisServerVersion(bin.server);
  } catch (error) {
    return unavailable(`${bin.server} does not run: ${(error as Error).message}`);
  }
  if (Number(version.split('.')[0]) < MIN_MAJOR_VERSION) {
    return unavailable(`redis-server ${version} is too old (Redis Cluster tests need ${MIN_MAJOR_VERSION}.0 or newer)`);
  }

  const startedAt = Date.now();
  try {
    root = mkdtempSync(path.join(os.tmpdir(), 'aspect-cache-redis-'));
    watchDir(root);
    const base = root;
    // allSettled: on a failure, nothing may still be starting when the teardown below runs.
    const [standaloneResult, clusterResult] = await Promise.allSettled([
      startOnFreePort(bin, port => path.join(base, `standalone-${port}`), () => [], started),
      startCluster(bin, port => path.join(base, `cluster-${port}`), started),
    ]);
    if (standaloneResult.status === 'rejected') throw standaloneResult.reason;
    if (clusterResult.status === 'rejected') throw clusterResult.reason;
    const standalone = standaloneResult.value;
    const cluster = clusterResult.value;
    const topology: RedisTopology = {
      available: true,
      version,
      bin,
      standalone: { host: HOST, port: standalone.port },
      cluster: { nodes: cluster.map(node => ({ host: HOST, port: node.port })) },
    };
    project.provide('redis', topology);
    if (process.env.ASPECT_CACHE_REDIS_DEBUG) {
      console.log(`redis ${version}: standalone :${standalone.port}, cluster ${cluster.map(n => `:${n.port}`).join(' ')} (${Date.now() - startedAt} ms, ${root})`);
    }
  } catch (error) {
    await teardown();
    throw new Error(`Could not start the test Redis servers: ${(error as Error).message}`, { cause: error });
  }
  return teardown;
}
