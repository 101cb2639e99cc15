// OrderFlow as a real service: the launcher. Creates (or re-creates, with --reset) the PostgreSQL schema with
// its seed data, then starts --processes worker processes (worker.ts) on consecutive ports, which share the
// cache through Redis. Prints one line per process when it listens, then `ready <ports>`.
//
//   npm run service:orderflow -- --processes 2 --port 4100 --reset
//   CACHING=off npm run service:orderflow            # the same service, caching disabled
//
// Settings: see config.ts (DATABASE_URL, REDIS_URL, PG_SCHEMA, CACHING, PROCESSES, PORT, PG_POOL_SIZE).
import { fork, type ChildProcess } from 'node:child_process';
import { readConfig } from './config.js';
import { ensureSchema, resetSchema } from './schema.js';

const config = readConfig();
const started = Date.now();
if (config.reset) {
  await resetSchema(config.databaseUrl, config.schema);
  console.log(`schema ${config.schema}: re-created and seeded (${Date.now() - started} ms)`);
} else {
  console.log(`schema ${config.schema}: ${await ensureSchema(config.databaseUrl, config.schema)}`);
}

// Workers get the settings through the environment; fork() runs them with this process's Node flags (tsx).
const env = { ...process.env, DATABASE_URL: config.databaseUrl, REDIS_URL: config.redisUrl, PG_SCHEMA: config.schema, CACHING: config.caching, PG_POOL_SIZE: String(config.poolSize) };
const workers: ChildProcess[] = [];
let stopping = false;

function stopAll(code: number): void {
  if (stopping) return;
  stopping = true;
  for (const worker of workers) if (worker.exitCode === null && worker.signalCode === null) worker.kill('SIGTERM');
  const deadline = setTimeout(() => {
    for (const worker of workers) worker.kill('SIGKILL');
    process.exit(code);
  }, 5_000);
  deadline.unref();
  void Promise.all(workers.map(worker => (worker.exitCode !== null || worker.signalCode !== null ? undefined : new Promise(resolve => worker.once('exit', resolve))))).then(() => process.exit(code));
}
process.on('SIGTERM', () => stopAll(0));
process.on('SIGINT', () => stopAll(0));
// Started by a program with an IPC channel (the tests, the benchmark): stop when that program goes away.
if (process.send) process.on('disconnect', () => stopAll(0));

const ports = Array.from({ length: config.processes }, (_, i) => config.port + i);
await Promise.all(
  ports.map(
    port =>
      new Promise<void>((resolve, reject) => {
        const worker = fork(new URL('./worker.ts', import.meta.url).pathname, [String(port)], { env });
        workers.push(worker);
        worker.on('message', (message: { type?: string; pid?: number }) => {
          if (message.type !== 'listening') return;
          console.log(`process ${message.pid} listening on http://127.0.0.1:${port} (caching ${config.caching})`);
          resolve();
        });
        worker.once('exit', (code, signal) => {
          reject(new Error(`worker on port ${port} exited (${signal ?? code}) before listening`));
          if (!stopping) {
            console.error(`orderflow-service: worker on port ${port} exited (${signal ?? code}); stopping`);
            stopAll(1);
          }
        });
      }),
  ),
).catch(error => {
  console.error(`orderflow-service: ${error instanceof Error ? error.message : String(error)}`);
  stopAll(1);
});
if (!stopping) console.log(`ready ${ports.join(',')}`);
