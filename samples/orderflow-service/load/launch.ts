// Starts the service (main.ts) as a child process on free ports, for the benchmark and the tests, and stops it.
// The launcher gets an IPC channel: if this process dies, the launcher and its workers stop by themselves.
import { spawn } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { CachingMode } from '../config.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../main.ts', import.meta.url));

export interface LaunchOptions {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly schema: string;
  readonly caching: CachingMode;
  readonly processes: number;
  /** Re-create and seed the schema first. */
  readonly reset: boolean;
  readonly poolSize?: number;
  /**
   * Node flags for the launcher (and, through fork, its workers). @default ['--import', 'tsx'] — the
   * benchmark adds `--import ./bench/built-library.mjs` to run the built library.
   */
  readonly nodeArgs?: readonly string[];
}

export interface RunningService {
  readonly targets: readonly string[];
  /** Everything the launcher printed (for error messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after 8 s; resolves when the launcher exited (its workers exit with it). */
  stop(): Promise<void>;
}

export async function launchService(options: LaunchOptions): Promise<RunningService> {
  const port = await freeConsecutivePorts(options.processes);
  const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: 'samples/tsconfig.json', DATABASE_URL: options.databaseUrl, REDIS_URL: options.redisUrl };
  delete env.NODE_OPTIONS; // a test runner's loader options must not leak into the service
  delete env.CACHING;
  delete env.PG_SCHEMA;
  const args = [...(options.nodeArgs ?? ['--import', 'tsx']), MAIN, '--schema', options.schema, '--caching', options.caching, '--processes', String(options.processes), '--port', String(port)];
  if (options.reset) args.push('--reset');
  if (options.poolSize) args.push('--pool-size', String(options.poolSize));
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>(resolve => child.once('exit', () => resolve()));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the service was not ready within 60 s:\n${output}`)), 60_000);
      const onData = () => {
        if (/^ready /m.test(output)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.once('exit', code => {
        clearTimeout(timer);
        reject(new Error(`the service exited (${code}) before it was ready:\n${output}`));
      });
    });
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }
  const targets = Array.from({ length: options.processes }, (_, i) => `http://127.0.0.1:${port + i}`);
  let stopping: Promise<void> | undefined;
  return {
    targets,
    output: () => output,
    stop: () =>
      (stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8_000);
        await exited;
        clearTimeout(timer);
      })()),
  };
}

/** A port p such that p … p + count - 1 are free on 127.0.0.1 (checked by listening on each). */
export async function freeConsecutivePorts(count: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const held: net.Server[] = [];
    try {
      for (let i = 0; i < count; i++) {
        const server = await listen(base + i);
        if (!server) break;
        held.push(server);
      }
      if (held.length === count) return base;
    } finally {
      await Promise.all(held.map(server => new Promise(resolve => server.close(resolve))));
    }
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise(resolve => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}
