// The parent's side of the multi-process consistency tests on Redis: forks workers (./consistency-worker.ts),
// makes each one an actor of the consistency model (its calls and writes go over IPC, its data reads come back
// to the parent's data source), feeds what they store and serve into the parent's expiry model, and collects
// what they measured.
import { fork, type ChildProcess } from 'node:child_process';
import type { Actor, DataSource, ExpiryModel, Node } from '../../support/consistency-model.js';
import type { ChildMessage, ParentMessage, WorkerStats } from './consistency-worker.js';

const WORKER = new URL('./consistency-worker.ts', import.meta.url).pathname;

export type WorkerInit = Extract<ParentMessage, { t: 'init' }>;

/** A running worker. */
export interface Child {
  readonly tag: string;
  readonly process: ChildProcess;
  send(message: ParentMessage): void;
  /** What the worker measured so far. */
  stats(): Promise<WorkerStats>;
  /** Disposes the worker's service and waits for it to exit (SIGKILL after 3 s). */
  stop(): Promise<void>;
}

/**
 * Forks a worker and waits until it is connected to Redis (and, when layered, trusts its L1). Observations of
 * its backend go to `expiry`; every other message to `onMessage`.
 */
export async function startChild(init: WorkerInit, expiry: ExpiryModel, onMessage: (message: ChildMessage) => void): Promise<Child> {
  const child = fork(WORKER, [], { execArgv: ['--import', 'tsx'], serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const send = (message: ParentMessage) => child.send(message);
  const statsWaiters: Array<(stats: WorkerStats) => void> = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${init.tag} did not start within 20 s`)), 20_000);
    child.once('exit', code => reject(new Error(`worker ${init.tag} exited with ${code}`)));
    child.on('message', (message: ChildMessage) => {
      switch (message.t) {
        case 'up':
          return send(init);
        case 'ready':
          clearTimeout(timer);
          return resolve();
        case 'stored':
          return expiry.stored(message.key, { value: { id: message.nodeId, parts: message.partIds.map(id => ({ id })) }, expiresAt: message.expiresAt, sliding: message.sliding, dependencies: message.dependencies }, message.at);
        case 'hit':
          return expiry.hit(message.key, { id: message.nodeId }, message.at);
        case 'removed':
          return expiry.removed(message.keys);
        case 'stats':
          return statsWaiters.shift()?.(message.stats);
        default:
          return onMessage(message);
      }
    });
  });
  return {
    tag: init.tag,
    process: child,
    send,
    stats: () =>
      new Promise(resolve => {
        statsWaiters.push(resolve);
        send({ t: 'stats' });
      }),
    stop: () =>
      new Promise<void>(resolve => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          child.kill('SIGKILL');
          resolve();
        }, 3_000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        send({ t: 'stop' });
      }),
  };
}

/** An actor in a child process: calls and writes go over IPC; its data reads come back to `ds`. */
export function remoteActor(name: string, child: Pick<Child, 'send'>, ds: DataSource): { actor: Actor; onMessage: (message: ChildMessage) => void } {
  let next = 0;
  const calls = new Map<number, { resolve: (v: Node) => void; reject: (e: Error) => void }>();
  const writes = new Map<number, { resolve: (v: { version?: number; value?: Node; error?: string }) => void }>();
  const actor: Actor = {
    name,
    call: (m, args) =>
      new Promise((resolve, reject) => {
        const id = next++;
        calls.set(id, { resolve, reject });
        child.send({ t: 'call', id, m, args: [...args] });
      }),
    async write(kind, r) {
      const v = kind === 'decorator' ? undefined : ds.write(r);
      const id = next++;
      const answer = await new Promise<{ version?: number; value?: Node; error?: string }>(resolve => {
        writes.set(id, { resolve });
        child.send({ t: 'write', id, kind, r });
      });
      if (answer.error !== undefined) throw new Error(answer.error);
      return { version: answer.version === undefined ? undefined : answer.version === -1 ? v : answer.version, ...(answer.value ? { value: answer.value } : {}) };
    },
  };
  const onMessage = (message: ChildMessage) => {
    switch (message.t) {
      case 'result': {
        const call = calls.get(message.id)!;
        calls.delete(message.id);
        if (message.error !== undefined) call.reject(new Error(message.error));
        else call.resolve(message.node as Node);
        return;
      }
      case 'written': {
        const w = writes.get(message.id)!;
        writes.delete(message.id);
        w.resolve(message as { version?: number; value?: Node; error?: string });
        return;
      }
      case 'read':
        ds.read(message.r).then(
          value => child.send({ t: 'reply', id: message.id, value }),
          (error: unknown) => child.send({ t: 'reply', id: message.id, error: String((error as Error).message) }),
        );
        return;
      case 'write-row':
        child.send({ t: 'reply', id: message.id, value: ds.write(message.r) });
        return;
      default:
    }
  };
  return { actor, onMessage };
}

/** Starts `inits.length` workers as actors `process0`, `process1`… of one run. */
export async function startActors(inits: readonly WorkerInit[], expiry: ExpiryModel, ds: DataSource, children: Child[]): Promise<Actor[]> {
  const actors: Actor[] = [];
  for (const [i, init] of inits.entries()) {
    let handler: (message: ChildMessage) => void = () => undefined;
    const child = await startChild(init, expiry, message => handler(message));
    children.push(child);
    const remote = remoteActor(`process${i}`, child, ds);
    handler = remote.onMessage;
    actors.push(remote.actor);
  }
  return actors;
}
