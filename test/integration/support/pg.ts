// PostgreSQL for the integration tests: the machine's server (127.0.0.1:5432, user postgres, database test),
// or PG_URL. A test creates its own schema and drops it. Without a server the tests are skipped with the reason
// in their name — except in CI (CI=true), where a missing server fails the run.
import pg from 'pg';
import type { CachingService } from '../../../src/index.js';

export const PG_URL = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** Whether PostgreSQL answers; the reason when it does not. */
export async function probePostgres(): Promise<{ available: boolean; reason: string }> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 3_000 });
  try {
    await client.connect();
    await client.query('select 1');
    return { available: true, reason: '' };
  } catch (error) {
    return { available: false, reason: `no PostgreSQL at ${PG_URL}: ${error instanceof Error ? error.message : String(error)}` };
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The README's recipe (section "Transactions"): a `BEGIN … COMMIT` helper that runs the work inside
 * `caching.transaction`, so that invalidations made during it hold their keys until the commit, and are made
 * again after it.
 */
export async function inTransaction<T>(pool: pg.Pool, caching: CachingService, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return caching.transaction(async () => {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  });
}
