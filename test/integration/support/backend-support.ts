// Helpers for the RedisBackend integration tests: sorting the backend's keys by kind, removing a test's keys,
// and reading every command a server executed (to count round trips).
//
// Key layout of the backend: `<keyPrefix>ac2:{p<n>}:<kind>:<key>`, kind one of v (entry), i and m (dependency indexes),
// g (invalidation marker), l (computation lease); plus `<keyPrefix>ac2:{p<n>}:s` (generation) and `…:c` (clear
// marker).
import { Cluster, type Redis } from 'ioredis';
import { scanKeys, type RedisClient } from './redis.js';

export type BackendKeyKind = 'v' | 'i' | 'm' | 'g' | 'l' | 's' | 'c' | 'other';

/** The kind of a backend key under `prefix` ('other': not in the ac2 layout). */
export function keyKind(prefix: string, redisKey: string): BackendKeyKind {
  if (!redisKey.startsWith(prefix)) return 'other';
  const match = /^ac2:\{p\d+\}:(?:([vimgl]):|([sc])$)/.exec(redisKey.slice(prefix.length));
  if (match === null) return 'other';
  return (match[1] ?? match[2]) as BackendKeyKind;
}

/** The keys under `prefix`, grouped by kind. */
export async function keysByKind(client: RedisClient, prefix: string): Promise<Record<BackendKeyKind, string[]>> {
  const groups: Record<BackendKeyKind, string[]> = { v: [], i: [], m: [], g: [], l: [], s: [], c: [], other: [] };
  for (const key of await scanKeys(client, prefix)) groups[keyKind(prefix, key)].push(key);
  return groups;
}

/** The partition number in a backend key (`…ac2:{p7}:v:…` → 7). */
export function partitionOf(redisKey: string): number {
  const match = /ac2:\{p(\d+)\}:/.exec(redisKey);
  if (match?.[1] === undefined) throw new Error(`not a backend key: ${redisKey}`);
  return Number(match[1]);
}

/** The cluster hash tag of a key (what is hashed to find its slot), as Redis defines it. */
function hashTag(key: string): string {
  const open = key.indexOf('{');
  if (open < 0) return key;
  const close = key.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

/**
 * Deletes every key under `prefix` (UNLINK in batches; on a cluster, batched per hash tag on the master that
 * holds it, so a multi-key UNLINK never spans slots). Returns how many keys it deleted.
 */
export async function purgePrefix(client: RedisClient, prefix: string): Promise<number> {
  const keys = await scanKeys(client, prefix);
  if (keys.length === 0) return 0;
  const groups = new Map<string, string[]>();
  for (const key of keys) {
    const group = client instanceof Cluster ? hashTag(key) : '';
    let list = groups.get(group);
    if (list === undefined) groups.set(group, (list = []));
    list.push(key);
  }
  const BATCH = 500;
  const work: Promise<unknown>[] = [];
  for (const list of groups.values()) {
    for (let i = 0; i < list.length; i += BATCH) work.push(client.unlink(...list.slice(i, i + BATCH)));
  }
  await Promise.all(work);
  return keys.length;
}

/**
 * Calls per command (INFO commandstats: `cmdstat_evalsha` → 'evalsha'), summed over the client's server or,
 * on a cluster, over its masters. Counts are server-wide: reset them first (resetCommandStats).
 */
export async function commandCalls(client: RedisClient): Promise<Map<string, number>> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  const calls = new Map<string, number>();
  for (const node of nodes) {
    const info = String(await node.info('commandstats'));
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      calls.set(match[1]!, (calls.get(match[1]!) ?? 0) + Number(match[2]));
    }
  }
  return calls;
}

/** The sum of `calls` over every command but the ones named in `except`. */
export function totalCalls(calls: Map<string, number>, except: readonly string[]): number {
  let total = 0;
  for (const [command, count] of calls) if (!except.includes(command)) total += count;
  return total;
}

/**
 * The commands clients sent to `nodes` (each a connection to one server: the standalone server, or every
 * master of a cluster) while `run` ran, as `command` names in lower case — round trips, as the servers saw
 * them. Uses MONITOR, which tags the commands a Lua script runs with the source 'lua': those are left out
 * (INFO commandstats counts them too on Redis 7, so it cannot tell a script's inner calls from round trips).
 */
/** Commands ioredis sends on its own to follow a cluster's topology. */
const IOREDIS_TOPOLOGY = new Set(['cluster', 'command']);

export async function clientCommandsDuring(nodes: readonly Redis[], run: () => Promise<void>): Promise<string[]> {
  const marker = `aspect-cache-monitor-${Math.random().toString(36).slice(2)}`;
  const monitors: Redis[] = [];
  const seen: string[][] = nodes.map(() => []);
  const ended: boolean[] = nodes.map(() => false);
  try {
    for (const [n, node] of nodes.entries()) {
      const monitor = await node.monitor();
      monitor.on('error', () => undefined);
      monitor.on('monitor', (_time: string, args: string[], source: string) => {
        if (args[0]?.toLowerCase() === 'echo' && args[1] === marker) ended[n] = true;
        // ioredis's own cluster topology refreshes (CLUSTER SLOTS/NODES, every few seconds) are not cache traffic.
        else if (source !== 'lua' && !ended[n] && !IOREDIS_TOPOLOGY.has(String(args[0]).toLowerCase())) seen[n]!.push(String(args[0]).toLowerCase());
      });
      monitors.push(monitor);
    }
    await run();
    // Each server shows its MONITOR output in order: once the marker is seen, everything before it was.
    await Promise.all(nodes.map(node => node.echo(marker)));
    const deadline = Date.now() + 5_000;
    while (!ended.every(Boolean)) {
      if (Date.now() > deadline) throw new Error('MONITOR did not report the end marker within 5 s');
      await new Promise(resolve => setTimeout(resolve, 5));
    }
    return seen.flat();
  } finally {
    for (const monitor of monitors) monitor.disconnect();
  }
}

/**
 * Socket reads the server (or, on a cluster, every master) has processed so far (INFO stats,
 * `total_reads_processed`). Commands a client writes at once arrive in one read; commands written one by one
 * mostly arrive in reads of their own. The INFO call itself adds one read per node.
 */
export async function readsProcessed(client: RedisClient): Promise<number> {
  const nodes = client instanceof Cluster ? client.nodes('master') : [client];
  let reads = 0;
  for (const node of nodes) {
    const match = /^total_reads_processed:(\d+)/m.exec(String(await node.info('stats')));
    if (match?.[1] === undefined) throw new Error('INFO stats has no total_reads_processed (Redis 6 or later is needed)');
    reads += Number(match[1]);
  }
  return reads;
}
