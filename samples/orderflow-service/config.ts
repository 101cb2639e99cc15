// The service's settings, from the command line (`--name value`) or the environment. One place, so that the
// launcher, each worker process and the tests agree on what a setting means.
import { parseArgs } from 'node:util';

/** How the caching layer is wired: `on` is the real thing; the broken modes exist to prove the checker can fail. */
export type CachingMode =
  | 'on'
  | 'off'
  /** Deliberately broken: writes commit but invalidate nothing (the checker must report stale reads). */
  | 'broken-skip-invalidation'
  /** Deliberately broken: each process listens on a bus channel of its own, so no L1 hears another's invalidations. */
  | 'broken-private-bus';

const MODES: readonly CachingMode[] = ['on', 'off', 'broken-skip-invalidation', 'broken-private-bus'];

export interface ServiceConfig {
  /** PostgreSQL connection string (`DATABASE_URL`). */
  readonly databaseUrl: string;
  /** Redis connection string (`REDIS_URL`); unused with caching off. */
  readonly redisUrl: string;
  /** The PostgreSQL schema holding the shop's tables (`PG_SCHEMA`). */
  readonly schema: string;
  /** `CACHING=off` (or `--caching off`) runs the same code with caching disabled. */
  readonly caching: CachingMode;
  /** Number of worker processes (`--processes`, `PROCESSES`). */
  readonly processes: number;
  /** Port of the first process; process i listens on `port + i` (`--port`, `PORT`). */
  readonly port: number;
  /** Drop and re-create the schema with the seed data before starting (`--reset`). */
  readonly reset: boolean;
  /** Connections per process in the pg pool (`--pool-size`, `PG_POOL_SIZE`). */
  readonly poolSize: number;
}

const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/** Reads the settings; `argv` and `env` default to the process's own. Throws a readable error on bad input. */
export function readConfig(argv: readonly string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): ServiceConfig {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      caching: { type: 'string' },
      processes: { type: 'string' },
      port: { type: 'string' },
      schema: { type: 'string' },
      reset: { type: 'boolean' },
      'pool-size': { type: 'string' },
    },
    strict: true,
  });
  const caching = (values.caching ?? env.CACHING ?? 'on') as CachingMode;
  if (!MODES.includes(caching)) throw new Error(`caching must be one of ${MODES.join(', ')}; got ${caching}`);
  const schema = values.schema ?? env.PG_SCHEMA ?? 'orderflow';
  if (!SCHEMA_NAME.test(schema)) throw new Error(`schema must be a lower-case SQL identifier; got ${schema}`);
  return {
    databaseUrl: env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    redisUrl: env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    schema,
    caching,
    processes: positive('processes', values.processes ?? env.PROCESSES ?? '2'),
    port: positive('port', values.port ?? env.PORT ?? '4100'),
    reset: values.reset ?? env.RESET === '1',
    poolSize: positive('pool-size', values['pool-size'] ?? env.PG_POOL_SIZE ?? '8'),
  };
}

function positive(name: string, text: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`${name} must be a positive integer; got ${text}`);
  return value;
}
