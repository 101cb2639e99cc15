// RedisInvalidationBus, the Redis pub/sub transport of the layered backend, on the servers of the global setup
// (standalone and the real 3-master cluster) and on dedicated servers that a test stops and restarts. Only the
// transport is tested here: strings in, strings out, 'up' and 'down'; the protocol on top is the layered backend's.
import { Cluster, type Redis } from 'ioredis';
import { afterEach, expect, it } from 'vitest';
import { CachingError, errors } from '../../src/index.js';
import type { BusReceiver } from '../../src/backends/invalidation-bus.js';
import { RedisInvalidationBus, type RedisInvalidationBusOptions } from '../../src/redis.js';
import { definitionError } from '../support/definition-error.js';
import { failureOf } from '../support/failure-of.js';
import { sleep, waitUntil } from './support/redis-process.js';
import { clusterClient, describeRedis, ready, standaloneClient, startDedicatedRedis, uniquePrefix, type RedisClient } from './support/redis.js';

/** A receiver that records everything it is told. */
class Recorder implements BusReceiver {
  readonly messages: string[] = [];
  readonly states: Array<'up' | 'down'> = [];
  readonly errors: Array<{ error: unknown; operation: string }> = [];

  onMessage(payload: string): void {
    this.messages.push(payload);
  }

  onConnection(state: 'up' | 'down'): void {
    this.states.push(state);
  }

  onError(error: unknown, operation: string): void {
    this.errors.push({ error, operation });
  }

  get state(): 'up' | 'down' | undefined {
    return this.states.at(-1);
  }
}

function eventually(check: () => boolean, what: () => string, timeoutMs = 5_000): Promise<void> {
  return waitUntil(() => Promise.resolve(check()), timeoutMs, what, 5);
}

const buses: RedisInvalidationBus[] = [];

/** A bus disposed after the test (before the helpers quit the clients). */
function busOf(options: RedisInvalidationBusOptions): RedisInvalidationBus {
  const bus = new RedisInvalidationBus(options);
  buses.push(bus);
  return bus;
}

/** Registered inside each describeRedis, so that it runs before the clients are quit. */
function disposeBusesAfterEach(): void {
  afterEach(async () => {
    await Promise.all(buses.splice(0).map(bus => bus.dispose()));
  });
}

/** Subscribes a new recorder and waits for its 'up'. */
async function liveRecorder(bus: RedisInvalidationBus): Promise<Recorder> {
  const recorder = new Recorder();
  bus.subscribe(recorder);
  await eventually(() => recorder.state === 'up', () => `states ${recorder.states.join(',')}`);
  return recorder;
}

/** Every server of a client (a cluster: every master and replica, since the subscriber may be on any of them). */
function serversOf(client: RedisClient): Redis[] {
  return client instanceof Cluster ? client.nodes('all') : [client];
}

/** How many connections are subscribed to `channel`, over all servers (PUBSUB NUMSUB is per node on a cluster). */
async function subscribersOf(client: RedisClient, channel: string): Promise<number> {
  let total = 0;
  for (const server of serversOf(client)) {
    const reply = (await server.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
    total += Number(reply[1]);
  }
  return total;
}

const codeOf = (error: unknown): unknown => (error as { code?: unknown } | null)?.code;

for (const topology of ['standalone', 'cluster'] as const) {
  describeRedis(`RedisInvalidationBus on ${topology}`, () => {
    disposeBusesAfterEach();

    async function connect(): Promise<RedisClient> {
      const client = topology === 'cluster' ? clusterClient() : standaloneClient();
      await ready(client);
      return client;
    }

    it("delivers every payload to every bus on the channel, the sender's own included, in each sender's order", async () => {
      const channel = uniquePrefix('bus');
      const [a, b] = [busOf({ client: await connect(), channel }), busOf({ client: await connect(), channel })];
      const [heardByA, heardByB] = [await liveRecorder(a), await liveRecorder(b)];

      // One publish at a time, alternating senders.
      const sequential: string[] = [];
      for (let i = 0; i < 10; i++) {
        for (const [name, bus] of [['a', a], ['b', b]] as const) {
          await bus.publish(`${name}${i}`);
          sequential.push(`${name}${i}`);
        }
      }
      // Both senders at once, many publishes in flight.
      const burst = (name: string) => Array.from({ length: 200 }, (_, i) => `${name}-burst-${i}`);
      await Promise.all([...burst('a').map(p => a.publish(p)), ...burst('b').map(p => b.publish(p))]);

      const total = sequential.length + 400;
      await eventually(() => heardByA.messages.length >= total && heardByB.messages.length >= total, () => `heard ${heardByA.messages.length}, ${heardByB.messages.length} of ${total}`);
      await sleep(50); // nothing more, nothing twice
      for (const heard of [heardByA.messages, heardByB.messages]) {
        expect(heard).toHaveLength(total);
        if (topology === 'standalone') {
          // One server: the order in which it accepted the publishes.
          expect(heard.slice(0, sequential.length)).toEqual(sequential);
        } else {
          // Two senders' payloads reach a cluster node over different cluster-bus links: only each sender's own order holds.
          for (const sender of [/^a\d+$/, /^b\d+$/]) expect(heard.filter(p => sender.test(p))).toEqual(sequential.filter(p => sender.test(p)));
        }
        expect(heard.filter(p => p.startsWith('a-burst'))).toEqual(burst('a'));
        expect(heard.filter(p => p.startsWith('b-burst'))).toEqual(burst('b'));
      }
    });

    it("reports 'up' only once the server has the subscription: a payload published at 'up' is heard", async () => {
      const channel = uniquePrefix('bus');
      const admin = await connect();
      const bus = busOf({ client: await connect(), channel });
      const recorder = new Recorder();
      let atUp: Promise<number> | undefined;
      bus.subscribe({
        onMessage: payload => recorder.onMessage(payload),
        onConnection: state => {
          recorder.onConnection(state);
          if (state !== 'up' || atUp) return;
          // Plain PUBLISH from another connection: the wire format is the payload itself.
          void admin.publish(channel, 'published at up');
          atUp = subscribersOf(admin, channel);
        },
      });
      await eventually(() => recorder.messages.includes('published at up'), () => `states ${recorder.states.join(',')}, heard ${recorder.messages.join(',')}`);
      expect(await atUp).toBe(1);
      expect(recorder.states).toEqual(['up']);
    });

    it('keeps channels apart and hands a binary payload over as its string', async () => {
      const [first, second] = [uniquePrefix('bus'), uniquePrefix('bus')];
      const admin = await connect();
      const onFirst = busOf({ client: await connect(), channel: first });
      const onSecond = busOf({ client: await connect(), channel: second });
      const [heardOnFirst, heardOnSecond] = [await liveRecorder(onFirst), await liveRecorder(onSecond)];
      await onFirst.publish('one');
      await onSecond.publish('two');
      await admin.publish(first, Buffer.from('bytes'));
      await eventually(() => heardOnFirst.messages.length === 2 && heardOnSecond.messages.length === 1, () => `heard ${heardOnFirst.messages.join(',')} / ${heardOnSecond.messages.join(',')}`);
      await sleep(50);
      expect(heardOnFirst.messages).toEqual(['one', 'bytes']);
      expect(heardOnSecond.messages).toEqual(['two']);
    });

    it("reports 'down' when the server drops the subscriber (CLIENT KILL TYPE pubsub), then 'up' once resubscribed, and delivers again", async () => {
      const channel = uniquePrefix('bus');
      const admin = await connect();
      const bus = busOf({ client: await connect(), channel });
      const recorder = await liveRecorder(bus);
      await Promise.all(serversOf(admin).map(server => server.call('CLIENT', 'KILL', 'TYPE', 'pubsub')));
      await eventually(() => recorder.states.length >= 3, () => `states ${recorder.states.join(',')}`);
      expect(recorder.states).toEqual(['up', 'down', 'up']);
      expect(await subscribersOf(admin, channel)).toBe(1);
      await bus.publish('after the kill');
      await eventually(() => recorder.messages.includes('after the kill'), () => `heard ${recorder.messages.join(',')}`);
    });

    it("tells a receiver added while live 'up' right after subscribe returns; a removed receiver hears nothing more", async () => {
      const channel = uniquePrefix('bus');
      const bus = busOf({ client: await connect(), channel });
      const first = new Recorder();
      const removeFirst = bus.subscribe(first);
      await eventually(() => first.state === 'up', () => `states ${first.states.join(',')}`);
      const late = new Recorder();
      bus.subscribe(late);
      expect(late.states).toEqual([]);
      await Promise.resolve();
      expect(late.states).toEqual(['up']);
      removeFirst();
      removeFirst(); // idempotent
      await bus.publish('for the late one');
      await eventually(() => late.messages.length === 1, () => `heard ${late.messages.join(',')}`);
      await sleep(50);
      expect(first.messages).toEqual([]);
      expect(first.states).toEqual(['up']);
    });

    it("dispose closes the bus's subscriber connection, not the application's client, and is idempotent", async () => {
      const channel = uniquePrefix('bus');
      const admin = await connect();
      const client = await connect();
      const bus = busOf({ client, channel });
      const recorder = await liveRecorder(bus);
      expect(await subscribersOf(admin, channel)).toBe(1);
      await Promise.all([bus.dispose(), bus.dispose()]);
      await bus.dispose();
      await waitUntil(async () => (await subscribersOf(admin, channel)) === 0, 2_000, () => 'the subscriber is still subscribed');
      await admin.publish(channel, 'after dispose');
      expect(await client.publish(channel, 'app client still works')).toBe(0);
      expect(await failureOf(() => bus.publish('x'))).toMatchObject({ code: errors.E_DISPOSED });
      expect(() => bus.subscribe(new Recorder())).toThrow(expect.objectContaining({ code: errors.E_DISPOSED }) as Error);
      await sleep(50);
      expect(recorder.messages).toEqual([]);
      expect(recorder.states).toEqual(['up']); // not told 'down': it just stops
    });

    if (topology === 'cluster') {
      it('subscribes once a cluster client that was not ready yet has discovered its nodes', async () => {
        const channel = uniquePrefix('bus');
        const bus = busOf({ client: clusterClient(), channel });
        const recorder = new Recorder();
        bus.subscribe(recorder);
        await bus.publish('before ready'); // queued by the cluster client, sent once it is ready
        await eventually(() => recorder.state === 'up', () => `states ${recorder.states.join(',')}`);
        await bus.publish('after ready');
        await eventually(() => recorder.messages.includes('after ready'), () => `heard ${recorder.messages.join(',')}`);
      });
    }
  });
}

describeRedis('RedisInvalidationBus on a failing server', () => {
  disposeBusesAfterEach();

  it("rejects a publish within publishTimeoutMs while the server is down, reports 'down', and is back after a restart", async () => {
    const server = await startDedicatedRedis();
    // Reconnects quickly once the server is back (the default back-off grows to 2 s); the bus's connection inherits it.
    const client = standaloneClient({ port: server.port, retryStrategy: () => 50 });
    const channel = uniquePrefix('bus');
    const bus = busOf({ client, channel, publishTimeoutMs: 300 });
    const recorder = await liveRecorder(bus);

    await server.stop();
    await eventually(() => recorder.state === 'down', () => `states ${recorder.states.join(',')}`);
    const startedAt = performance.now();
    const timedOut = await failureOf(() => bus.publish('while down'));
    const elapsed = performance.now() - startedAt;
    expect(timedOut).toBeInstanceOf(CachingError);
    expect(timedOut).toMatchObject({ code: errors.E_TIMEOUT, message: expect.stringContaining('RedisInvalidationBus') as string });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(1_000);

    // A client that refuses commands while disconnected: the failure itself, wrapped.
    const refusing = standaloneClient({ port: server.port, enableOfflineQueue: false, lazyConnect: true, retryStrategy: () => 50 });
    const refused = await failureOf(() => busOf({ client: refusing, channel }).publish('refused'));
    expect(refused).toMatchObject({ code: errors.E_BACKEND, message: expect.stringContaining('RedisInvalidationBus') as string });
    expect((refused as Error).cause).toBeInstanceOf(Error);

    await eventually(() => recorder.errors.some(e => e.operation === 'subscriber connection'), () => `errors ${recorder.errors.length}`);
    await server.start();
    await eventually(() => recorder.states.length >= 3, () => `states ${recorder.states.join(',')}`);
    expect(recorder.states).toEqual(['up', 'down', 'up']);
    await bus.publish('back');
    await eventually(() => recorder.messages.includes('back'), () => `heard ${recorder.messages.join(',')}`);
  });

  it('dispose gives the server its connection back and leaves the application client working', async () => {
    const server = await startDedicatedRedis();
    const client = standaloneClient({ port: server.port });
    await ready(client);
    const connections = async () => Number(/^connected_clients:(\d+)/m.exec(await client.info('clients'))?.[1]);
    const before = await connections();
    const bus = busOf({ client, channel: uniquePrefix('bus') });
    await liveRecorder(bus);
    expect(await connections()).toBe(before + 1);
    await bus.dispose();
    await waitUntil(async () => (await connections()) === before, 2_000, () => 'the subscriber connection is still open');
    expect(await client.ping()).toBe('PONG');
    expect(client.status).toBe('ready');
  });

  it('opens a new subscriber connection when ioredis gives up reconnecting the old one', async () => {
    const server = await startDedicatedRedis();
    const client = standaloneClient({ port: server.port, retryStrategy: () => null }); // the bus's connection inherits it
    await ready(client);
    const connections = async () => Number(/^connected_clients:(\d+)/m.exec(await client.info('clients'))?.[1]);
    const channel = uniquePrefix('bus');
    const bus = busOf({ client, channel });
    const recorder = await liveRecorder(bus);
    const withBus = await connections();
    await client.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await eventually(() => recorder.states.length >= 3, () => `states ${recorder.states.join(',')}`);
    expect(recorder.states).toEqual(['up', 'down', 'up']);
    expect(await connections()).toBe(withBus); // the old one is gone, not leaked
    await bus.publish('on the new connection');
    await eventually(() => recorder.messages.includes('on the new connection'), () => `heard ${recorder.messages.join(',')}`);
  });

  it("asks again when the server refuses the SUBSCRIBE, and reports 'up' only once it accepts", async () => {
    const server = await startDedicatedRedis();
    const admin = standaloneClient({ port: server.port });
    const channel = uniquePrefix('bus');
    await admin.call('ACL', 'SETUSER', 'bus', 'on', '>secret', '~*', 'resetchannels', '&other', '+@all');
    const client = standaloneClient({ port: server.port, username: 'bus', password: 'secret' });
    await ready(client);
    const bus = busOf({ client, channel });
    const recorder = new Recorder();
    bus.subscribe(recorder);
    await eventually(() => recorder.errors.filter(e => e.operation === 'subscribe').length >= 2, () => `errors ${recorder.errors.map(e => e.operation).join(',')}`);
    expect(recorder.states).toEqual([]);
    expect(String((recorder.errors[0]!.error as Error).message)).toMatch(/NOPERM/);
    await admin.call('ACL', 'SETUSER', 'bus', 'allchannels');
    await eventually(() => recorder.state === 'up', () => `states ${recorder.states.join(',')}`, 5_000);
    await bus.publish('allowed now');
    await eventually(() => recorder.messages.includes('allowed now'), () => `heard ${recorder.messages.join(',')}`);
  });

  it('keeps delivering to the other receivers when one throws', async () => {
    const channel = uniquePrefix('bus');
    const bus = busOf({ client: standaloneClient(), channel });
    const thrower = new Recorder();
    bus.subscribe({
      onMessage: () => {
        throw new Error('receiver bug');
      },
      onConnection: () => {
        throw new Error('receiver bug');
      },
      onError: (error, operation) => thrower.onError(error, operation),
    });
    const good = await liveRecorder(bus);
    await bus.publish('one');
    await bus.publish('two');
    await eventually(() => good.messages.length === 2, () => `heard ${good.messages.join(',')}`);
    expect(thrower.errors.map(e => e.operation)).toEqual(['onConnection', 'onMessage', 'onMessage']);
    expect(good.states).toEqual(['up']);
  });
});

describeRedis('RedisInvalidationBus options', () => {
  it('has documented defaults', () => {
    const bus = new RedisInvalidationBus({ client: standaloneClient({ lazyConnect: true }) });
    expect(bus.name).toBe('redis');
    expect(bus.channel).toBe('aspect-cache:invalidations');
    expect(bus.heartbeatMs).toBe(1_000);
  });

  it('rejects invalid options, naming the option', () => {
    const client = standaloneClient({ lazyConnect: true });
    const invalid = (options: unknown) => definitionError(() => new RedisInvalidationBus(options as RedisInvalidationBusOptions), errors.E_INVALID_OPTION).message;
    expect(invalid(undefined)).toBe('RedisInvalidationBus: options must be an object with a client.');
    expect(invalid({})).toBe('RedisInvalidationBus: option client must be an ioredis Redis or Cluster instance.');
    expect(invalid({ client: {} })).toBe('RedisInvalidationBus: option client must be an ioredis Redis or Cluster instance.');
    expect(invalid({ client, channel: '' })).toBe('RedisInvalidationBus: option channel must be a non-empty string, got "".');
    expect(invalid({ client, channel: 7 })).toBe('RedisInvalidationBus: option channel must be a non-empty string, got 7.');
    for (const option of ['heartbeatMs', 'publishTimeoutMs']) {
      for (const value of [0, -1, Number.NaN, Infinity, '100']) {
        expect(invalid({ client, [option]: value })).toBe(`RedisInvalidationBus: option ${option} must be a positive number of milliseconds, got ${typeof value === 'string' ? `"${value}"` : String(value)}.`);
      }
    }
    expect(invalid({ client, heartbeat: 500 })).toBe("RedisInvalidationBus: unknown option 'heartbeat'; did you mean 'heartbeatMs'?");
    expect(invalid({ client, timeoutMs: 500 })).toBe("RedisInvalidationBus: unknown option 'timeoutMs'; did you mean 'publishTimeoutMs'?");
  });
});
