// A child process for the outage test (../redis-outage.test.ts): one CachingService on a RedisBackend of its own
// connection, serving a cached getRow(id) over a "database" of one file per row (version numbers), with
// `callers` concurrent loops calling it. Driven over IPC by the test:
//   → { type: 'run' }                         start the caller loops
//   → { type: 'write', rows, version }         (the writer) write each row, then `await caching.invalidate(...)`
//   → { type: 'expect', rows, version }        reads of these rows that start from now on must see ≥ version
//   → { type: 'stop' }                         stop the loops, report the statistics, dispose, exit
//   ← { type: 'ready' } | { type: 'written', results, at } | { type: 'stats', … }
// Run with `node --import tsx outage-worker.ts` and the settings in the environment (see below).
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { addDependency, bindCachingService, Cache, CachingService } from '../../../src/index.js';
import { RedisBackend } from '../../../src/redis.js';

const env = process.env;
const port = Number(env.OUTAGE_PORT);
const keyPrefix = env.OUTAGE_PREFIX ?? '';
const dataDir = env.OUTAGE_DATA_DIR ?? '';
const callers = Number(env.OUTAGE_CALLERS ?? 32);
const rowCount = Number(env.OUTAGE_ROWS ?? 8);
const resetTimeoutMs = Number(env.OUTAGE_RESET_TIMEOUT_MS ?? 5_000);

const send = (message: object): void => {
  process.send?.(message);
};
// The test is gone (it failed or was killed): never outlive it.
process.on('disconnect', () => process.exit(0));

const rowFile = (id: number): string => path.join(dataDir, `row-${id}`);
const readVersion = (id: number): number => Number(readFileSync(rowFile(id), 'utf8'));
/** Atomic replacement: a concurrent read sees the old or the new version, never a torn file. */
function writeVersion(id: number, version: number): void {
  const temp = `${rowFile(id)}.${process.pid}.tmp`;
  writeFileSync(temp, String(version));
  renameSync(temp, rowFile(id));
}

// A client that reconnects quickly once the server is back (the default back-off grows to 2 s).
const client = new Redis({ host: '127.0.0.1', port, retryStrategy: () => 50 });
let readyAt = 0;
const readyTimes: number[] = [];
client.on('ready', () => {
  readyAt = Date.now();
  readyTimes.push(readyAt);
});
client.on('error', () => undefined); // connection errors while the server is down are expected

const backend = new RedisBackend({
  client,
  keyPrefix,
  operationTimeoutMs: 200,
  invalidationTimeoutMs: 500,
  circuitBreaker: { failureThreshold: 3, resetTimeoutMs },
});
const caching = new CachingService({ backend, telemetry: false });
let errorEvents = 0;
caching.on('error', () => {
  errorEvents++;
});
const circuit: Array<{ state: string; at: number }> = [];
caching.on('circuit', e => circuit.push({ state: e.state, at: Date.now() }));

class Rows {
  constructor() {
    bindCachingService(this, caching);
  }

  @Cache()
  async getRow(id: number): Promise<{ id: number; version: number }> {
    addDependency(`Row:${id}`);
    return { id, version: readVersion(id) };
  }
}
const rows = new Rows();

// ── what the loops observe ──
let running = false;
let calls = 0;
let failures = 0;
const firstFailures: string[] = [];
/** Completed calls per 100 ms (wall clock), so the test can count the calls served during the outage. */
const callsPer100Ms: Record<number, number> = {};
/** Per row: the version a read that starts at or after `from` must see at least. */
const expected = new Map<number, { version: number; from: number }>();
const stale = { count: 0, first: 0, last: 0 };
let landedAt = 0;

function expect(ids: readonly number[], version: number): void {
  const from = Date.now();
  for (const id of ids) expected.set(id, { version, from });
}

async function loop(): Promise<void> {
  while (running) {
    const id = Math.floor(Math.random() * rowCount);
    const startedAt = Date.now();
    try {
      const row = await rows.getRow(id);
      const now = Date.now();
      calls++;
      const bucket = Math.floor(now / 100);
      callsPer100Ms[bucket] = (callsPer100Ms[bucket] ?? 0) + 1;
      const want = expected.get(id);
      if (row.id !== id) throw new Error(`getRow(${id}) returned row ${row.id}`);
      if (want !== undefined && startedAt >= want.from && row.version < want.version) {
        stale.count++;
        if (stale.first === 0) stale.first = now;
        stale.last = now;
      }
    } catch (error) {
      failures++;
      if (firstFailures.length < 5) firstFailures.push(String(error));
    }
    // A macrotask yield between calls: with the circuit open a call never leaves the process, and 32 loops of
    // resolved promises would starve timers and IPC.
    await new Promise(resolve => setTimeout(resolve, 1));
  }
}

let loops: Promise<void>[] = [];

process.on('message', (message: { type: string; rows?: number[]; version?: number }) => {
  void (async () => {
    if (message.type === 'run') {
      running = true;
      loops = Array.from({ length: callers }, () => loop());
    } else if (message.type === 'write') {
      const ids = message.rows ?? [];
      const version = message.version ?? 0;
      const results: Array<{ pending: boolean }> = [];
      for (const id of ids) {
        writeVersion(id, version);
        results.push(await caching.invalidate(`Row:${id}`));
        expect([id], version);
      }
      landedAt = 0;
      // When the queue lands (polled: the backend has no event for it).
      const watch = setInterval(() => {
        if (backend.pendingInvalidations === 0) {
          landedAt = Date.now();
          clearInterval(watch);
        }
      }, 2);
      send({ type: 'written', results, at: Date.now(), pendingAfter: backend.pendingInvalidations });
    } else if (message.type === 'expect') {
      expect(message.rows ?? [], message.version ?? 0);
    } else if (message.type === 'stop') {
      running = false;
      await Promise.all(loops);
      send({ type: 'stats', calls, failures, firstFailures, callsPer100Ms, stale, landedAt, readyAt, readyTimes, circuit, errorEvents, pending: backend.pendingInvalidations });
      await caching.dispose();
      client.disconnect();
      process.exit(0);
    }
  })().catch(error => {
    send({ type: 'crash', error: String(error instanceof Error ? error.stack : error) });
    process.exit(1);
  });
});

client.once('ready', () => send({ type: 'ready' }));
