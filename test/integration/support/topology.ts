// What the global setup (test/integration/support/global-setup.ts) hands to the Redis tests through
// `project.provide('redis', …)` / `inject('redis')`. Plain data: it is serialised to the test workers.

export interface RedisAddress {
  host: string;
  port: number;
}

export interface RedisBinaries {
  /** Absolute path of the redis-server the setup used (dedicated servers use the same one). */
  server: string;
  /** Absolute path of the matching redis-cli. */
  cli: string;
}

export interface RedisTopologyAvailable {
  available: true;
  /** The redis-server version the setup started, e.g. "7.0.15". */
  version: string;
  bin: RedisBinaries;
  standalone: RedisAddress;
  /** All six nodes of the 3-master + 3-replica cluster (roles may change after a failover). */
  cluster: { nodes: RedisAddress[] };
}

export interface RedisTopologyUnavailable {
  available: false;
  /** Why the Redis tests are skipped (shown in the skipped suites' names). */
  reason: string;
}

export type RedisTopology = RedisTopologyAvailable | RedisTopologyUnavailable;

declare module 'vitest' {
  export interface ProvidedContext {
    redis: RedisTopology;
  }
}
