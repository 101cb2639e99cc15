// The PostgreSQL access of the service: a pg pool whose every statement is counted (GET /stats reports the
// count, which is how the load generator measures what caching saves), and the transaction helper that puts a
// database transaction inside caching.transaction.
import type { CachingService } from 'aspect-cache';
import pg from 'pg';

/** What the read and write code needs from the database: one statement at a time. */
export interface Queryable {
  query<R extends pg.QueryResultRow>(text: string, params?: readonly unknown[]): Promise<pg.QueryResult<R>>;
}

export class Database implements Queryable {
  /** SQL statements sent by this process since start (or the last reset), BEGIN and COMMIT included. */
  statements = 0;
  readonly #pool: pg.Pool;

  /**
   * `schema` becomes the connection's `search_path`, so the SQL names tables without a schema and the same code
   * runs against any schema (the tests and the benchmark use one of their own).
   */
  constructor(connectionString: string, schema: string, poolSize: number) {
    this.#pool = new pg.Pool({ connectionString, max: poolSize, options: `-c search_path=${schema}` });
    // An idle client that loses its connection emits 'error' on the pool; without a listener it would crash
    // the process. The next query gets a fresh connection.
    this.#pool.on('error', error => console.error(`orderflow-service: idle PostgreSQL connection failed: ${error.message}`));
  }

  query<R extends pg.QueryResultRow>(text: string, params: readonly unknown[] = []): Promise<pg.QueryResult<R>> {
    this.statements++;
    return this.#pool.query<R>(text, params as unknown[]);
  }

  /**
   * Runs `work` in a database transaction (BEGIN … COMMIT on one connection) inside `caching.transaction`:
   * invalidations made by `work` remove the entries at once and hold their keys — no process stores a value
   * computed from them — until the transaction is over; then the keys are invalidated again and released.
   * So a read that runs between an invalidation and the COMMIT, and reads the old row, cannot cache it.
   * Resolves after COMMIT and that release, so the caller may answer the write then.
   */
  transaction<T>(caching: CachingService, work: (tx: Queryable) => Promise<T>): Promise<T> {
    return caching.transaction(async () => {
      const client = await this.#pool.connect();
      const tx: Queryable = {
        query: <R extends pg.QueryResultRow>(text: string, params: readonly unknown[] = []) => {
          this.statements++;
          return client.query<R>(text, params as unknown[]);
        },
      };
      try {
        await tx.query('BEGIN');
        const result = await work(tx);
        await tx.query('COMMIT');
        return result;
      } catch (error) {
        await tx.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    });
  }

  end(): Promise<void> {
    return this.#pool.end();
  }
}
