// A Redis outage under load, across two real Node processes (issue 8, "Outage"; SPEC §6 and §8): a Redis that
// keeps its data across a crash (append-only file) is killed with SIGKILL while 64 callers in two processes read
// through it, the writer updates rows and invalidates them while it is down, and the server comes back on the
// same port with the old entries. No call fails; `invalidate()` says `{ pending: true }` while Redis is
// unreachable; once it is back, the other process stops seeing the old rows within a second of the writer
// reaching Redis, although its own circuit breaker closes long before the writer's would.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { sleep } from './support/redis-process.js';
import { describeRedis, startDedicatedRedis, uniquePrefix } from './support/redis.js';

const WORKER = fileURLToPath(new URL('./support/outage-worker.ts', import.meta.url));
const ROWS = 8;
const CALLERS_PER_PROCESS = 32;
const OUTAGE_MS = 2_500;
const OBSERVE_AFTER_BACK_MS = 3_000;
/** The bound of SPEC §6: a queued invalidation lands within about a second of the store being reachable. */
const STALE_BOUND_MS = 1_000;

interface Stats {
  calls: number;
  failures: number;
  firstFailures: string[];
  callsPer100Ms: Record<string, number>;
  stale: { count: number; first: number; last: number };
  landedAt: number;
  readyAt: number;
  readyTimes: number[];
  circuit: Array<{ state: string; at: number }>;
  errorEvents: number;
  pending: number;
}

interface Worker {
  readonly child: ChildProcess;
  /** The next message of this type (rejects if the worker exits or crashes first). */
  next<T>(type: string, timeoutMs?: number): Promise<T>;
  send(message: object): void;
}

const children: ChildProcess[] = [];

function startWorker(name: string, env: Record<string, string>): Worker {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER], {
    cwd: process.cwd(),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const inbox: Array<{ type: string }> = [];
  const waiting: Array<{ type: string; resolve: (m: unknown) => void; reject: (e: Error) => void }> = [];
  let exited: Error | undefined;
  const fail = (error: Error) => {
    exited = error;
    for (const w of waiting.splice(0)) w.reject(error);
  };
  child.on('message', (message: { type: string; error?: string }) => {
    if (message.type === 'crash') return fail(new Error(`${name} crashed: ${message.error}`));
    const i = waiting.findIndex(w => w.type === message.type);
    if (i >= 0) waiting.splice(i, 1)[0]!.resolve(message);
    else inbox.push(message);
  });
  child.on('exit', (code, signal) => fail(new Error(`${name} exited (code ${code}, signal ${signal})`)));
  return {
    child,
    send: message => child.send(message),
    next<T>(type: string, timeoutMs = 20_000): Promise<T> {
      const i = inbox.findIndex(m => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0] as T);
      if (exited) return Promise.reject(exited);
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no '${type}' message within ${timeoutMs} ms`)), timeoutMs);
        waiting.push({
          type,
          resolve: m => {
            clearTimeout(timer);
            resolve(m as T);
          },
          reject: e => {
            clearTimeout(timer);
            reject(e);
          },
        });
      });
    },
  };
}

/** Calls completed in [from, to) (wall clock, 100 ms buckets, so within ±100 ms). */
function callsBetween(stats: Stats, from: number, to: number): number {
  let total = 0;
  for (const [bucket, count] of Object.entries(stats.callsPer100Ms)) if (Number(bucket) * 100 >= from && Number(bucket) * 100 < to) total += count;
  return total;
}

describeRedis('An outage across processes (Redis killed under load and restarted with its data)', () => {
  afterEach(() => {
    for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });

  it('fails no call, resolves invalidate() { pending: true } while Redis is down, and no process serves an invalidated row later than 1 s after the writer reaches Redis again', { timeout: 60_000 }, async () => {
    const server = await startDedicatedRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'aspect-cache-outage-'));
    try {
      for (let id = 0; id < ROWS; id++) writeFileSync(path.join(dataDir, `row-${id}`), '1');
      const common = { OUTAGE_PORT: String(server.port), OUTAGE_PREFIX: uniquePrefix('outage'), OUTAGE_DATA_DIR: dataDir, OUTAGE_CALLERS: String(CALLERS_PER_PROCESS), OUTAGE_ROWS: String(ROWS) };
      // The writer's read breaker waits 5 s before probing; the reader's only 1 s: it reads Redis again long
      // before the writer's breaker would let an invalidation through.
      const writer = startWorker('writer', { ...common, OUTAGE_RESET_TIMEOUT_MS: '5000' });
      const reader = startWorker('reader', { ...common, OUTAGE_RESET_TIMEOUT_MS: '1000' });
      await Promise.all([writer.next('ready', 30_000), reader.next('ready', 30_000)]);
      writer.send({ type: 'run' });
      reader.send({ type: 'run' });
      await sleep(1_000); // every row cached, in the append-only file too (fsync always)

      const killedAt = Date.now();
      await server.kill();
      await sleep(400); // under load: both circuits open
      const invalidated = [0, 1, 2, 3];
      writer.send({ type: 'write', rows: invalidated, version: 2 });
      const written = await writer.next<{ results: Array<{ pending: boolean }>; at: number; pendingAfter: number }>('written');
      reader.send({ type: 'expect', rows: invalidated, version: 2 });
      expect(written.results).toEqual(invalidated.map(() => ({ pending: true })));
      expect(written.pendingAfter).toBe(invalidated.length);

      await sleep(Math.max(0, killedAt + OUTAGE_MS - Date.now()));
      const restartAt = Date.now();
      await server.start(); // same port, same directory: the old entries of rows 0-3 come back
      const backAt = Date.now();
      await sleep(OBSERVE_AFTER_BACK_MS);

      writer.send({ type: 'stop' });
      reader.send({ type: 'stop' });
      const [w, r] = await Promise.all([writer.next<Stats>('stats'), reader.next<Stats>('stats')]);

      const writerReachedAt = w.readyTimes.find(t => t >= restartAt) ?? Infinity;
      const landedMs = w.landedAt - backAt;
      const staleAfterBackMs = r.stale.count === 0 ? 0 : r.stale.last - backAt;
      const staleAfterWriterReadyMs = r.stale.count === 0 ? 0 : r.stale.last - writerReachedAt;
      const readerClosedAt = r.circuit.find(c => c.state === 'closed' && c.at >= restartAt)?.at;
      console.log(
        `[redis-outage] calls: writer ${w.calls} (${callsBetween(w, killedAt, backAt)} during the outage), reader ${r.calls} (${callsBetween(r, killedAt, backAt)}); ` +
          `failures ${w.failures + r.failures}; writer reconnected ${writerReachedAt - backAt} ms after the server answered PING; ` +
          `queue landed ${landedMs} ms after it (${w.landedAt - writerReachedAt} ms after the writer reconnected); ` +
          `reader's circuit closed ${readerClosedAt === undefined ? 'never' : `${readerClosedAt - backAt} ms`} after; ` +
          `reader stale reads ${r.stale.count}, last ${staleAfterBackMs} ms after the server was back (${staleAfterWriterReadyMs} ms after the writer reconnected); writer stale reads ${w.stale.count}`,
      );

      // No call failed, in either process, and both kept serving during the outage.
      expect({ writer: w.firstFailures, reader: r.firstFailures }).toEqual({ writer: [], reader: [] });
      expect(w.failures + r.failures).toBe(0);
      expect(callsBetween(w, killedAt, backAt)).toBeGreaterThan(0);
      expect(callsBetween(r, killedAt, backAt)).toBeGreaterThan(0);
      // The writer's queue landed soon after Redis was back, though its own read circuit was still open.
      expect(w.pending).toBe(0);
      expect(w.landedAt).toBeGreaterThan(0);
      expect(landedMs).toBeLessThan(STALE_BOUND_MS);
      // The writer never served the rows it invalidated; the reader, not later than the bound.
      expect(w.stale.count).toBe(0);
      if (r.stale.count > 0) expect(r.stale.first).toBeGreaterThanOrEqual(restartAt); // none while Redis was down
      expect(staleAfterBackMs).toBeLessThan(STALE_BOUND_MS);
      // The reader did read Redis again during the observation (otherwise it could not have seen stale rows).
      expect(readerClosedAt).toBeDefined();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
