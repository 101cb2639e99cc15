// Helpers for the Redis integration tests (project 'redis'). The servers come from the global setup
// (./global-setup.ts) through inject('redis'); tests add their own keys under a uniquePrefix() and never flush.
//
//   const redis = redisTopology();
//   describeRedis('my backend', () => {
//     it('…', async () => {
//       const client = standaloneClient();          // quit after the test (or after the suite, if created in beforeAll)
//       const prefix = uniquePrefix('my-backend');  // t:my-backend:<random>:
//       …
//       expect(await countKeys(client, prefix)).toBe(0);
//     });
//   });
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, inject } from 'vitest';
import { FOREIGN_PORT, HOST, settlesWithin, startOnFreePort, unwatchDir, watchDir, type RedisServerProcess } from './redis-process.js';
import type { RedisTopology, RedisTopologyAvailable } from './topology.js';

export type { RedisTopology } from './topology.js';
export type RedisClient = Redis | Cluster;

/** What the global setup started (or why Redis is unavailable). */
export function redisTopology(): RedisTopology {
  return inject('redis');
}

function availableTopology(): RedisTopologyAvailable {
  const topology = redisTopology();
  if (!topology.available) throw new Error(`Redis is not available (${topology.reason}): use describeRedis() so that this test is skipped`);
  return topology;
}

// ---------------------------------------------------------------------------------------------------------------
// Suites and cleanup
//
// Clients and dedicated servers created while a test runs (in the test or its beforeEach) are closed after that
// test; those created in beforeAll (or at collection) after the suite. describeRedis registers the hooks; a
// file-level afterAll below catches anything created outside a describeRedis.

let inTest = false;
const testScoped = { clients: new Set<RedisClient>(), servers: new Set<DedicatedRedis>() };
const suiteScoped = { clients: new Set<RedisClient>(), servers: new Set<DedicatedRedis>() };
const scope = () => (inTest ? testScoped : suiteScoped);

async function release(resources: { clients: Set<RedisClient>; servers: Set<DedicatedRedis> }): Promise<void> {
  const clients = [...resources.clients];
  const servers = [...resources.servers];
  resources.clients.clear();
  resources.servers.clear();
  await Promise.all(clients.map(closeClient));
  await Promise.all(servers.map(server => server.dispose()));
}

async function releaseAll(): Promise<void> {
  await release(testScoped);
  await release(suiteScoped);
}

/**
 * `describe` that is skipped — with the reason in its name — when the global setup found no redis-server.
 * Registers the hooks that quit the clients and dispose the dedicated servers the helpers created.
 */
export function describeRedis(name: string, fn: () => void): void {
  const topology = redisTopology();
  const title = name + (topology.available ? '' : ` [skipped: ${topology.reason}]`);
  describe.skipIf(!topology.available)(title, () => {
    // Registered first: with vitest's default 'stack' hook order, beforeEach runs before the suite's own and
    // afterEach/afterAll run after the suite's own (which may still use the clients).
    beforeEach(() => {
      inTest = true;
    });
    afterEach(async () => {
      inTest = false;
      await release(testScoped);
    });
    afterAll(async () => {
      await releaseAll();
    });
    fn();
  });
}

// Safety net for helpers used outside describeRedis (registered on the importing test file).
afterAll(async () => {
  inTest = false;
  await releaseAll();
});

// ---------------------------------------------------------------------------------------------------------------
// Keys

let counter = 0;

/**
 * A key prefix no other test uses: `t:<label>:<random>:`. With `hashTag`, `{t:<label>:<random>}:` so that every
 * key under it lands in one cluster slot (multi-key commands and Lua on a cluster).
 */
export function uniquePrefix(label: string, { hashTag = false }: { hashTag?: boolean } = {}): string {
  const id = `t:${label}:${randomBytes(6).toString('hex')}${(counter++).toString(36)}`;
  return hashTag ? `{${id}}:` : `${id}:`;
}

function globEscape(text: string): string {
  return text.replace(/[*?[\]\\]/g, match => `\\${match}`);
}

function nodesOf(client: RedisClient, role: 'master' | 'all' = 'master'): Redis[] {
  return client instanceof Cluster ? client.nodes(role) : [client];
}

/** The keys starting with `prefix` (SCAN; on a cluster, every master). Wait for a cluster client's 'ready' first. */
export async function scanKeys(client: RedisClient, prefix: string): Promise<string[]> {
  const keys = new Set<string>(); // SCAN may return a key twice
  for (const node of nodesOf(client)) {
    let cursor = '0';
    do {
      const [next, batch] = await node.scan(cursor, 'MATCH', `${globEscape(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of batch) keys.add(key);
    } while (cursor !== '0');
  }
  return [...keys];
}

/** How many keys start with `prefix`: for residue checks. */
export async function countKeys(client: RedisClient, prefix: string): Promise<number> {
  return (await scanKeys(client, prefix)).length;
}

// ---------------------------------------------------------------------------------------------------------------
// Clients

function tracked<T extends RedisClient>(client: T): T {
  // Connection errors are expected in failure tests; commands still reject with them. Without a listener
  // ioredis prints "[ioredis] Unhandled error event" for each reconnection attempt.
  client.on('error', () => undefined);
  scope().clients.add(client);
  return client;
}

// ioredis 6.0.0 declares RedisOptions.replyMapping as `ReplyMappingMode | undefined`, which its own constructors
// reject under exactOptionalPropertyTypes; these helpers never set it.
type ClientOptions = Omit<RedisOptions, 'replyMapping'>;

/** An ioredis client of the standalone server (options override; pass `port` to reach a dedicated server). */
export function standaloneClient(options: ClientOptions = {}): Redis {
  const { standalone } = availableTopology();
  if (options.port === FOREIGN_PORT) throw new Error(`port ${FOREIGN_PORT} is not a server these tests started`);
  return tracked(new Redis({ host: standalone.host, port: standalone.port, ...options }));
}

/** An ioredis Cluster client of the 3-master cluster, seeded with all six nodes. */
export function clusterClient(options: Omit<ClusterOptions, 'redisOptions'> & { redisOptions?: ClientOptions } = {}): Cluster {
  const { cluster } = availableTopology();
  return tracked(new Cluster(cluster.nodes, options));
}

/** Resolves once the client is 'ready' (connected, and for a cluster: slots loaded). */
export function ready(client: RedisClient, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`client not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** quit() when connected (bounded to 2 s), else disconnect(): never hangs on a stopped server. */
export async function closeClient(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    await settlesWithin(client.quit(), 2_000);
  }
  if (client.status !== 'end') client.disconnect();
}

// ---------------------------------------------------------------------------------------------------------------
// Command statistics (round-trip counting)

/** Ports of servers started for these tests: the only ones whose statistics may be reset. */
function isOurPort(port: number | undefined): boolean {
  if (port === undefined || port === FOREIGN_PORT) return false;
  const topology = availableTopology();
  return (
    topology.standalone.port === port ||
    topology.cluster.nodes.some(node => node.port === port) ||
    [...dedicatedPorts].includes(port)
  );
}

function parseCalls(info: string, command: string): number {
  const name = command.toLowerCase().replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const match = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
  return match?.[1] ? Number(match[1]) : 0;
}

/**
 * How many times the server executed `command` (INFO commandstats, e.g. 'evalsha'; subcommands as
 * 'client|setname'). On a cluster, the sum over the masters (replicas also count replicated commands).
 * Counts are server-wide: compare before/after, or resetCommandStats() first.
 */
export async function commandCount(client: RedisClient, command: string): Promise<number> {
  let total = 0;
  for (const node of nodesOf(client)) total += parseCalls(String(await node.info('commandstats')), command);
  return total;
}

/** CONFIG RESETSTAT on the client's server (on a cluster: every node). Only on servers these tests started. */
export async function resetCommandStats(client: RedisClient): Promise<void> {
  const nodes = nodesOf(client, 'all');
  for (const node of nodes) {
    if (node.options.host !== HOST || !isOurPort(node.options.port)) {
      throw new Error(`refusing CONFIG RESETSTAT on ${node.options.host}:${node.options.port}: not a server these tests started`);
    }
  }
  await Promise.all(nodes.map(node => node.config('RESETSTAT')));
}

// ---------------------------------------------------------------------------------------------------------------
// Dedicated servers (failure tests)

export interface DedicatedRedis {
  readonly host: string;
  readonly port: number;
  /** SHUTDOWN NOSAVE (SIGKILL if it does not exit); resolves once the port refuses connections. */
  stop(): Promise<void>;
  /** SIGKILL (a crash: no shutdown, no save); resolves once the process is gone. */
  kill(): Promise<void>;
  /** Starts it again on the same port (empty unless started with persistence); resolves once it answers PING. */
  start(): Promise<void>;
  /** The directory the server runs in (its AOF lives there). */
  readonly dir: string;
  /** Stops it if running (killing it if need be) and removes its directory. Idempotent; called automatically. */
  dispose(): Promise<void>;
}

const dedicatedPorts = new Set<number>();

/**
 * Starts an extra standalone redis-server on a free port, for tests that stop and restart a real server.
 * Disposed automatically after the test (or the suite, when started in beforeAll), even if the test failed.
 * `args` are extra server arguments (they override the defaults), e.g. `['--appendonly', 'yes']` for a server
 * that keeps its data across a restart.
 */
export async function startDedicatedRedis({ args = [] }: { args?: readonly string[] } = {}): Promise<DedicatedRedis> {
  const { bin } = availableTopology();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'aspect-cache-redis-dedicated-'));
  watchDir(dir);
  const spawned: RedisServerProcess[] = [];
  const cleanup = async () => {
    await Promise.all(spawned.map(server => server.stop().catch(() => server.kill())));
    rmSync(dir, { recursive: true, force: true });
    unwatchDir(dir);
  };
  let server: RedisServerProcess;
  try {
    server = await startOnFreePort(bin, port => path.join(dir, String(port)), () => [...args], spawned);
  } catch (error) {
    await cleanup();
    throw error;
  }
  const owner = scope();
  let disposed: Promise<void> | undefined;
  const handle: DedicatedRedis = {
    host: HOST,
    port: server.port,
    dir: server.dir,
    stop: () => server.stop(),
    kill: () => server.kill(),
    start: async () => {
      if (disposed) throw new Error(`dedicated redis-server on port ${server.port} was disposed`);
      await server.start();
    },
    dispose: () => {
      disposed ??= (async () => {
        owner.servers.delete(handle);
        try {
          await cleanup();
        } finally {
          await Promise.all(spawned.map(s => s.kill())); // whatever stop() left behind
          dedicatedPorts.delete(server.port);
        }
      })();
      return disposed;
    },
  };
  dedicatedPorts.add(server.port);
  owner.servers.add(handle);
  return handle;
}
