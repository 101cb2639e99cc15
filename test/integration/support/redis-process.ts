// Starting and stopping redis-server processes for the integration tests. Used by the global setup (in vitest's
// main process) and by startDedicatedRedis (in a test worker), so it imports nothing from vitest.
//
// Rules kept here: every server is a child process we spawned on a free loopback port, in its own temp dir;
// we only ever stop servers we started, and never talk to port 6379 (a Redis someone else runs).
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { RedisBinaries } from './topology.js';

export const HOST = '127.0.0.1';
/** The port of a Redis this machine runs for others: never used, flushed or stopped by the tests. */
export const FOREIGN_PORT = 6379;
/** Redis Cluster nodes also listen on port + 10000 (the cluster bus). */
const CLUSTER_BUS_OFFSET = 10_000;

function assertOurs(port: number): void {
  if (port === FOREIGN_PORT) throw new Error(`refusing to touch port ${FOREIGN_PORT}: it is not a server the tests started`);
}

// ---------------------------------------------------------------------------------------------------------------
// Finding the binaries

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/**
 * redis-server and redis-cli: from ASPECT_CACHE_REDIS_SERVER / ASPECT_CACHE_REDIS_CLI when set (set one to
 * /nonexistent to simulate a machine without Redis), else from PATH. Returns why not when one is missing.
 */
export function findRedisBinaries(env: NodeJS.ProcessEnv = process.env): RedisBinaries | { missing: string } {
  const serverOverride = env.ASPECT_CACHE_REDIS_SERVER;
  const server = serverOverride ? (isExecutable(serverOverride) ? serverOverride : undefined) : onPath('redis-server');
  if (!server) {
    return { missing: serverOverride ? `ASPECT_CACHE_REDIS_SERVER=${serverOverride} is not an executable` : 'redis-server is not on PATH' };
  }
  const cliOverride = env.ASPECT_CACHE_REDIS_CLI;
  const sibling = path.join(path.dirname(server), 'redis-cli');
  const cli = cliOverride ? (isExecutable(cliOverride) ? cliOverride : undefined) : isExecutable(sibling) ? sibling : onPath('redis-cli');
  if (!cli) {
    return { missing: cliOverride ? `ASPECT_CACHE_REDIS_CLI=${cliOverride} is not an executable` : 'redis-cli is not on PATH' };
  }
  return { server, cli };
}

export function run(file: string, args: string[], timeoutMs = 10_000): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      if (error) {
        reject(Object.assign(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`.trim()), { stdout, stderr }));
      } else {
        resolve({ stdout, stderr });
      }
    });
  });
}

/** "7.0.15" from `redis-server --version`. */
export async function redisServerVersion(server: string): Promise<string> {
  const { stdout } = await run(server, ['--version'], 5_000);
  const match = /v=(\d+\.\d+\.\d+)/.exec(stdout);
  if (!match?.[1]) throw new Error(`cannot read the version of ${server} from: ${stdout.trim()}`);
  return match[1];
}

// ---------------------------------------------------------------------------------------------------------------
// Ports

function listen(port: number): Promise<net.Server | undefined> {
  return new Promise(resolve => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen({ port, host: HOST, exclusive: true }, () => resolve(server));
  });
}

function close(server: net.Server): Promise<void> {
  return new Promise(resolve => server.close(() => resolve()));
}

/**
 * `count` distinct free loopback ports, found by listening on port 0 (all held until every port is found, so
 * they are distinct). With `clusterBus`, port + 10000 must be free too (and ≤ 65535): Redis Cluster binds it.
 * A port is free when returned; a process may still take it before the server binds it (start() then fails
 * with "Address already in use" and the callers retry on another port).
 */
export async function freePorts(count: number, { clusterBus = false } = {}): Promise<number[]> {
  const held: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt > count * 50) throw new Error(`could not find ${count} free loopback ports${clusterBus ? ' with free cluster bus ports' : ''}`);
      const server = await listen(0);
      if (!server) continue;
      held.push(server); // held even when rejected, so the OS does not hand it out again
      const port = (server.address() as net.AddressInfo).port;
      if (port === FOREIGN_PORT) continue;
      if (clusterBus) {
        if (port + CLUSTER_BUS_OFFSET > 65_535) continue;
        const bus = await listen(port + CLUSTER_BUS_OFFSET);
        if (!bus) continue;
        held.push(bus);
      }
      ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(held.map(close));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A minimal RESP client, for the setup's readiness checks (no ioredis retries, no RESP3 negotiation)

type Reply = string | number | null;

/** Sends one command to 127.0.0.1:port and resolves its reply (simple string, integer or bulk string). */
export function rawCommand(port: number, args: string[], timeoutMs = 2_000): Promise<Reply> {
  assertOurs(port);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let buffer = Buffer.alloc(0);
    let settled = false;
    const finish = (error: Error | undefined, reply?: Reply) => {
      if (settled) return;
      settled = true;
      socket.destroy();
      if (error) reject(error);
      else resolve(reply ?? null);
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no reply from ${HOST}:${port} within ${timeoutMs} ms`)));
    socket.once('error', error => finish(error));
    socket.once('close', () => finish(new Error(`${HOST}:${port} closed the connection`)));
    socket.on('data', chunk => {
      buffer = Buffer.concat([buffer, chunk]);
      const lineEnd = buffer.indexOf('\r\n');
      if (lineEnd < 0) return;
      const type = String.fromCharCode(buffer[0] ?? 0);
      const line = buffer.subarray(1, lineEnd).toString();
      if (type === '+') return finish(undefined, line);
      if (type === '-') return finish(Object.assign(new Error(line), { redisError: true }));
      if (type === ':') return finish(undefined, Number(line));
      if (type === '$') {
        const length = Number(line);
        if (length < 0) return finish(undefined, null);
        if (buffer.length < lineEnd + 2 + length + 2) return; // wait for the rest
        return finish(undefined, buffer.subarray(lineEnd + 2, lineEnd + 2 + length).toString());
      }
      finish(new Error(`unexpected reply type ${JSON.stringify(type)} from ${HOST}:${port}`));
    });
    socket.write(`*${args.length}\r\n` + args.map(arg => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join(''));
  });
}

export async function pingOk(port: number): Promise<boolean> {
  try {
    return (await rawCommand(port, ['PING'], 1_000)) === 'PONG';
  } catch {
    return false;
  }
}

/** True when nothing accepts connections on 127.0.0.1:port. */
export function refusesConnections(port: number): Promise<boolean> {
  return new Promise(resolve => {
    const socket = net.connect({ host: HOST, port });
    socket.setTimeout(1_000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

export const sleep = (ms: number) => new Promise<void>(resolve => setTimeout(resolve, ms));

/** Whether `promise` settled within `ms` (the timer is cleared, so it never holds the process open). */
export async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>(resolve => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` until it returns true; on timeout throws `describe()` (the state it last saw). */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, describe: () => string, intervalMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Safety net: a leftover server is killed when the process that started it goes away

const live = new Set<ChildProcess>();
let watchdog: ChildProcess | null | undefined;

// A tiny node process reading "+pid" / "-pid" lines on stdin. When its stdin closes (our process exited, even by
// SIGKILL or a worker being terminated), it SIGKILLs the redis-servers still registered, after checking on
// Linux that the pid still is a redis-server (so a reused pid is never hit). It ignores SIGINT/SIGHUP so that
// it outlives a Ctrl-C long enough to do its job. It also removes the temp dirs registered with watchDir().
const WATCHDOG_SOURCE = `
const fs = require('node:fs');
const pids = new Set();
const dirs = new Set();
let pending = '';
for (const signal of ['SIGINT', 'SIGHUP', 'SIGTERM']) process.on(signal, () => {});
process.stdin.setEncoding('utf8');
process.stdin.on('data', data => {
  pending += data;
  let end;
  while ((end = pending.indexOf('\\n')) >= 0) {
    const line = pending.slice(0, end);
    pending = pending.slice(end + 1);
    const set = line[1] === 'p' ? pids : dirs;
    const value = line[1] === 'p' ? Number(line.slice(2)) : line.slice(2);
    if (line[0] === '+') set.add(value); else set.delete(value);
  }
});
process.stdin.on('end', () => {
  for (const pid of pids) {
    try {
      if (fs.existsSync('/proc/' + pid) && !fs.readFileSync('/proc/' + pid + '/cmdline', 'utf8').includes('redis-server')) continue;
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  for (const dir of dirs) {
    try { fs.rmSync(dir, { recursive: true, force: true }); } catch {}
  }
  process.exit(0);
});
`;

function watchdogProcess(): ChildProcess | null {
  if (watchdog !== undefined) return watchdog;
  try {
    const child = spawn(process.execPath, ['-e', WATCHDOG_SOURCE], { stdio: ['pipe', 'ignore', 'ignore'] });
    child.on('error', () => undefined);
    child.stdin?.on('error', () => undefined);
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    watchdog = child;
  } catch {
    watchdog = null;
  }
  process.once('exit', () => {
    // Synchronous last resort when the process exits normally without having stopped its servers.
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    }
  });
  return watchdog;
}

function track(child: ChildProcess): void {
  live.add(child);
  if (child.pid !== undefined) watchdogProcess()?.stdin?.write(`+p${child.pid}\n`);
}

function untrack(child: ChildProcess): void {
  live.delete(child);
  if (child.pid !== undefined && watchdog) watchdog.stdin?.write(`-p${child.pid}\n`);
}

/** Has the watchdog remove `dir` if this process dies without cleaning up (a temp dir we created). */
export function watchDir(dir: string): void {
  watchdogProcess()?.stdin?.write(`+d${dir}\n`);
}

/** `dir` was removed (or must survive): the watchdog forgets it. */
export function unwatchDir(dir: string): void {
  if (watchdog) watchdog.stdin?.write(`-d${dir}\n`);
}

// ---------------------------------------------------------------------------------------------------------------
// One redis-server

export class RedisStartError extends Error {
  constructor(
    message: string,
    readonly addressInUse: boolean,
  ) {
    super(message);
  }
}

/** A redis-server child process on a fixed port, in a fixed directory; can be stopped and started again. */
export class RedisServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  private output = '';

  constructor(
    readonly bin: RedisBinaries,
    readonly port: number,
    readonly dir: string,
    private readonly extraArgs: readonly string[] = [],
  ) {
    assertOurs(port);
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child?.pid : undefined;
  }

  get logFile(): string {
    return path.join(this.dir, 'redis.log');
  }

  /** Spawns the server and resolves once it answers PING; rejects (and kills it) if it exits or hangs. */
  async start(timeoutMs = 15_000): Promise<void> {
    if (this.running) throw new Error(`redis-server on port ${this.port} is already running`);
    mkdirSync(this.dir, { recursive: true });
    const args = [
      '--port', String(this.port),
      '--bind', HOST,
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', this.dir,
      '--logfile', this.logFile,
      ...this.extraArgs,
    ];
    this.output = '';
    const child = spawn(this.bin.server, args, { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    const collect = (chunk: Buffer) => {
      this.output = (this.output + chunk.toString()).slice(-4_000);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    this.exited = new Promise(resolve => {
      child.once('exit', () => {
        untrack(child);
        resolve();
      });
      child.once('error', error => {
        collect(Buffer.from(String(error)));
        untrack(child);
        resolve();
      });
    });
    track(child);

    const deadline = Date.now() + timeoutMs;
    // (a port answered by some other process never says PONG; the race notices our child exiting meanwhile)
    while (!(await Promise.race([pingOk(this.port), this.exited.then(() => false)]))) {
      if (!this.running || Date.now() >= deadline) {
        const reason = this.running ? `did not answer PING within ${timeoutMs} ms` : `exited (code ${child.exitCode}, signal ${child.signalCode})`;
        await this.kill();
        const details = this.diagnostics();
        throw new RedisStartError(`redis-server on ${HOST}:${this.port} ${reason}\n${details}`, /address already in use/i.test(details));
      }
      await sleep(15);
    }
  }

  /** `redis-cli -p PORT shutdown nosave`; SIGKILL if still alive after 5 s; resolves once the port refuses connections. */
  async stop(): Promise<void> {
    if (!this.running) return;
    try {
      await run(this.bin.cli, ['-h', HOST, '-p', String(this.port), 'shutdown', 'nosave'], 5_000);
    } catch {
      /* the exit (or the kill below) is what counts */
    }
    if (!(await settlesWithin(this.exited, 5_000))) await this.kill();
    await waitUntil(() => refusesConnections(this.port), 5_000, () => `port ${this.port} still accepts connections after its redis-server stopped`);
  }

  /** SIGKILL, no questions asked; resolves when the process is gone. */
  async kill(): Promise<void> {
    if (!this.child) return;
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** Child output and the tail of the log, for error messages. */
  diagnostics(): string {
    let log = '';
    try {
      if (existsSync(this.logFile)) log = readFileSync(this.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      /* no log */
    }
    return [this.output.trim() && `output: ${this.output.trim()}`, log.trim() && `log (${this.logFile}):\n${log.trim()}`].filter(Boolean).join('\n');
  }
}

/**
 * Starts a redis-server on a free port (retrying on another port if the chosen one was taken in the meantime).
 * `started` receives every process spawned, so the caller can clean up even if this throws.
 */
export async function startOnFreePort(
  bin: RedisBinaries,
  dirFor: (port: number) => string,
  extraArgs: (port: number) => string[],
  started: RedisServerProcess[],
  { clusterBus = false, port: firstPort }: { clusterBus?: boolean; port?: number } = {},
): Promise<RedisServerProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && firstPort !== undefined ? firstPort : (await freePorts(1, { clusterBus }))[0]!;
    const server = new RedisServerProcess(bin, port, dirFor(port), extraArgs(port));
    started.push(server);
    try {
      await server.start();
      return server;
    } catch (error) {
      if (!(error instanceof RedisStartError && error.addressInUse) || attempt >= 5) throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// A 3-master + 3-replica cluster

function infoField(info: string, field: string): string | undefined {
  return new RegExp(`^${field}:(.*)$`, 'm').exec(info)?.[1]?.trim();
}

/**
 * Starts 6 cluster-enabled servers (each in dirFor(port)), joins them with `redis-cli --cluster create …
 * --cluster-replicas 1`, and waits until every node reports cluster_state:ok with all 16384 slots assigned and
 * all 6 nodes known, every node sees 3 masters + 3 replicas with healthy links (roles spread by gossip ~1-3 s
 * after cluster_state:ok), and every replica's link to its master is up.
 */
export async function startCluster(
  bin: RedisBinaries,
  dirFor: (port: number) => string,
  started: RedisServerProcess[],
  { timeoutMs = 30_000 }: { timeoutMs?: number } = {},
): Promise<RedisServerProcess[]> {
  const size = 6;
  const clusterArgs = (port: number) => [
    '--cluster-enabled', 'yes',
    '--cluster-config-file', `nodes-${port}.conf`,
    '--cluster-node-timeout', '5000',
    '--repl-diskless-sync-delay', '0',
  ];
  const ports = await freePorts(size, { clusterBus: true });
  const results = await Promise.allSettled(ports.map(port => startOnFreePort(bin, dirFor, clusterArgs, started, { clusterBus: true, port })));
  const failure = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failure) throw failure.reason;
  const nodes = results.map(result => (result as PromiseFulfilledResult<RedisServerProcess>).value);

  const addresses = nodes.map(node => `${HOST}:${node.port}`);
  try {
    await run(bin.cli, ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'], 60_000);
  } catch (error) {
    throw new Error(`redis-cli --cluster create failed: ${(error as Error).message}`);
  }

  const state = new Map<number, string>();
  await waitUntil(
    async () => {
      const ready = await Promise.all(
        nodes.map(async node => {
          try {
            const info = String(await rawCommand(node.port, ['CLUSTER', 'INFO']));
            const summary = ['cluster_state', 'cluster_slots_assigned', 'cluster_known_nodes'].map(f => `${f}:${infoField(info, f)}`).join(' ');
            let ok =
              infoField(info, 'cluster_state') === 'ok' &&
              infoField(info, 'cluster_slots_assigned') === '16384' &&
              infoField(info, 'cluster_known_nodes') === String(size);
            // Every node must also see the same roles (a replica's role spreads by gossip after cluster_state:ok)
            // and a healthy link to every other node, or clients may load a stale slot map.
            const lines = String(await rawCommand(node.port, ['CLUSTER', 'NODES'])).trim().split('\n');
            const flags = lines.map(line => line.split(' ')[2]?.split(',') ?? []);
            const masters = flags.filter(f => f.includes('master')).length;
            const replicas = flags.filter(f => f.includes('slave')).length;
            const unhealthy = lines.filter(line => /fail|handshake|noaddr/.test(line.split(' ')[2] ?? '') || line.split(' ')[7] !== 'connected').length;
            if (masters !== size / 2 || replicas !== size / 2 || unhealthy > 0) ok = false;
            const view = `view:${masters}m+${replicas}r${unhealthy ? `,${unhealthy} unhealthy` : ''}`;
            const replication = String(await rawCommand(node.port, ['INFO', 'replication']));
            const role = infoField(replication, 'role');
            const link = role === 'slave' ? infoField(replication, 'master_link_status') : undefined;
            if (role === 'slave' && link !== 'up') ok = false;
            state.set(node.port, `${summary} ${view} role:${role}${link ? ` master_link_status:${link}` : ''}`);
            return ok;
          } catch (error) {
            state.set(node.port, `error: ${(error as Error).message}`);
            return false;
          }
        }),
      );
      return ready.every(Boolean);
    },
    timeoutMs,
    () => `Redis Cluster not ready: ${[...state].map(([port, s]) => `\n  ${HOST}:${port} ${s}`).join('')}`,
    100,
  );
  return nodes;
}
