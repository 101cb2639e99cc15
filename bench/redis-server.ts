// Starts a private redis-server for bench/redis.bench.ts: a free loopback port, a temporary directory, no
// persistence, and stopped at the end, even when the benchmark fails. The benchmark never touches any other
// Redis (it checks the server's process id before it resets statistics or writes anything).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** A redis-server child process owned by this benchmark. */
export interface OwnRedis {
  readonly port: number;
  readonly pid: number;
  readonly dir: string;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and removes its directory. Safe to call twice. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const READY_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 3;

/** A TCP port that was free on 127.0.0.1 a moment ago (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, HOST, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('could not obtain a free port'))));
    });
  });
}

/** Waits until the child logs that it accepts connections; rejects if it exits or takes too long. */
function waitReady(child: ChildProcess, output: { text: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      if (output.text.length < 20_000) output.text += chunk.toString();
      if (output.text.includes('Ready to accept connections')) finish();
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => finish(new Error(`redis-server exited before it was ready (code ${code}, signal ${signal}):\n${output.text.trim()}`));
    const onError = (error: Error) => finish(error);
    const timer = setTimeout(() => finish(new Error(`redis-server was not ready after ${READY_TIMEOUT_MS} ms:\n${output.text.trim()}`)), READY_TIMEOUT_MS);
    function finish(error?: Error): void {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
      if (error) reject(error);
      else resolve();
    }
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise(resolve => {
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(false);
    }, ms);
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    child.once('exit', onExit);
  });
}

/**
 * Spawns `redis-server --port <free> --bind 127.0.0.1 --save "" --appendonly no` in a temporary directory.
 * Retries with another port if the one it picked was taken in between.
 */
export async function startRedis(): Promise<OwnRedis> {
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'aspect-cache-bench-redis-'));
    const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'notice'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = { text: '' };
    // Backstop: whatever happens to this process (uncaught error, process.exit), the server gets SIGTERM.
    const onProcessExit = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    };
    process.once('exit', onProcessExit);
    try {
      await waitReady(child, output);
    } catch (error) {
      lastError = error;
      process.off('exit', onProcessExit);
      child.kill('SIGKILL');
      await waitExit(child, 2_000);
      rmSync(dir, { recursive: true, force: true });
      continue;
    }
    // Keep draining its output so the pipe never fills.
    child.stdout?.resume();
    child.stderr?.resume();
    const pid = child.pid!;
    let stopped: Promise<void> | undefined;
    const stop = (): Promise<void> =>
      (stopped ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          if (!(await waitExit(child, 5_000))) {
            child.kill('SIGKILL');
            await waitExit(child, 2_000);
          }
        }
        process.off('exit', onProcessExit);
        rmSync(dir, { recursive: true, force: true });
      })());
    return { port, pid, dir, stop };
  }
  throw new Error(`could not start redis-server after ${START_ATTEMPTS} attempts: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}
