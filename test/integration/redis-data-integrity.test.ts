// RedisBackend with awkward data (issue 8, cases 4, 6 and 7; SPEC §3 and §8): any string is a valid key and
// dependency (lone UTF-16 surrogates included), scripts never half-write, corrupt bookkeeping keys are
// repaired, and values are either round-tripped faithfully or skipped with a reason naming the type.
import SuperJSON from 'superjson';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingService, type CacheEventMap } from '../../src/index.js';
import { RedisBackend, type RedisBackendOptions } from '../../src/redis.js';
import { deferred, type Deferred } from '../support/deferred.js';
import { keysByKind, purgePrefix } from './support/backend-support.js';
import { waitUntil } from './support/redis-process.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

interface Process {
  readonly backend: RedisBackend;
  readonly service: CachingService;
  readonly sets: string[];
  readonly skips: Array<CacheEventMap['skip']>;
  readonly errors: Array<CacheEventMap['error']>;
}

const cleanup: { services: CachingService[]; prefixes: Array<{ client: RedisClient; prefix: string }> } = { services: [], prefixes: [] };

function startProcess(client: RedisClient, keyPrefix: string, options: Partial<RedisBackendOptions> = {}): Process {
  const backend = new RedisBackend({ client, keyPrefix, ...options });
  const service = new CachingService({ backend, telemetry: false });
  const process: Process = { backend, service, sets: [], skips: [], errors: [] };
  service.on('set', e => process.sets.push(e.key));
  service.on('skip', e => process.skips.push(e));
  service.on('error', e => process.errors.push(e));
  cleanup.services.push(service);
  cleanup.prefixes.push({ client, prefix: keyPrefix });
  return process;
}

/** The key the service gives `Rows.row(id)`. */
const rowKey = (id: string) => `Rows.row(${JSON.stringify(`row:${id}`)})`;

/** `"Caf😀".slice(0, 4)`: a string ending in a lone high surrogate. */
const LONE_HIGH = 'Caf😀'.slice(0, 4);

/** Reads a row whose id (and dependency) the test chooses; `gate` holds the computation open. */
class Rows {
  runs = 0;
  gate: Deferred<void> | undefined;
  started = deferred();

  constructor(
    service: CachingService,
    readonly db: Map<string, number>,
  ) {
    bindCachingService(this, service);
  }

  @Cache({ key: (id: string) => `row:${id}` })
  async row(id: string): Promise<number> {
    this.runs++;
    addDependency(`Row:${id}`);
    const value = this.db.get(id) ?? 0;
    this.started.resolve();
    if (this.gate !== undefined) await this.gate.promise;
    return value;
  }

  @Cache({ key: (id: string) => `sliding:${id}`, ttl: 60_000, slidingExpiration: 30_000 })
  async sliding(id: string): Promise<number> {
    this.runs++;
    addDependency(`Row:${id}`);
    return this.db.get(id) ?? 0;
  }
}

class Unregistered {
  constructor(readonly name: string) {}
}

class Registry extends Map<string, number> {}

class Registered {
  constructor(
    readonly name: string,
    readonly at: Date,
  ) {}

  greet(): string {
    return `hello ${this.name}`;
  }
}
SuperJSON.registerClass(Registered, { identifier: 'aspect-cache.test.integrity.Registered' });

/** Values superjson alone would change; `make` builds a fresh one for each call. */
class Values {
  runs = 0;
  constructor(
    service: CachingService,
    readonly make: () => unknown,
  ) {
    bindCachingService(this, service);
  }

  @Cache()
  async value(): Promise<unknown> {
    this.runs++;
    return this.make();
  }
}

describeRedis('RedisBackend with awkward keys, corrupt bookkeeping and awkward values', () => {
  let raw: RedisClient;

  beforeEach(async () => {
    raw = standaloneClient();
    await ready(raw);
  });

  afterEach(async () => {
    const { services, prefixes } = cleanup;
    cleanup.services = [];
    cleanup.prefixes = [];
    await Promise.all(services.map(s => s.dispose()));
    for (const { client, prefix } of prefixes) if (client.status === 'ready') await purgePrefix(client, prefix);
  });

  // ───────────── case 4: any string is a key or a dependency; scripts never half-write ─────────────

  it('stores and invalidates an entry whose dependency holds a lone surrogate: invalidate() removes it, nothing is left half-written', async () => {
    const prefix = uniquePrefix('lone-dep');
    const a = startProcess(standaloneClient(), prefix);
    const rows = new Rows(a.service, new Map([[LONE_HIGH, 1]]));

    expect(await rows.row(LONE_HIGH)).toBe(1);
    expect(a.sets).toEqual([rowKey(LONE_HIGH)]);
    expect(await rows.row(LONE_HIGH)).toBe(1);
    expect(rows.runs).toBe(1);

    rows.db.set(LONE_HIGH, 2);
    await a.service.invalidate(`Row:${LONE_HIGH}`);
    expect(await rows.row(LONE_HIGH)).toBe(2);
    expect(rows.runs).toBe(2);
    expect(a.skips).toEqual([]);
    expect(a.errors).toEqual([]);
  });

  it('keeps keys that differ only in which lone surrogate they hold apart (no U+FFFD collision), as entries and as dependencies', async () => {
    const prefix = uniquePrefix('lone-collision');
    const a = startProcess(standaloneClient(), prefix);
    const first = 'x\ud800';
    const second = 'x\ud801';
    const rows = new Rows(
      a.service,
      new Map([
        [first, 1],
        [second, 2],
        ['x\ufffd', 3],
        ['x\ufffe', 4],
      ]),
    );

    expect(await rows.row(first)).toBe(1);
    expect(await rows.row(second)).toBe(2);
    expect(await rows.row('x\ufffd')).toBe(3);
    expect(await rows.row('x\ufffe')).toBe(4);
    expect(rows.runs).toBe(4);
    expect(a.backend.entryKey(first)).not.toBe(a.backend.entryKey(second));

    // Invalidating one dependency removes its entry only.
    rows.db.set(first, 10);
    const removed = await a.backend.invalidate([`Row:${first}`]);
    expect(removed.removed).toEqual([rowKey(first)]);
    expect(await rows.row(first)).toBe(10);
    expect(await rows.row(second)).toBe(2);
    expect(await rows.row('x\ufffd')).toBe(3);
    expect(await rows.row('x\ufffe')).toBe(4);
    expect(rows.runs).toBe(5);
  });

  it('keeps entry keys that differ only in which lone surrogate they hold apart, and returns them intact from invalidate()', async () => {
    const prefix = uniquePrefix('lone-entry-keys');
    const { backend } = startProcess(standaloneClient(), prefix);
    const keys = ['k\ud800', 'k\ud801', 'k\ufffd', 'k\ufffe', 'k\ufffed800', '\udfffk\ud83d\ude00'];
    for (const [i, key] of keys.entries()) {
      const lookup = await backend.get(key);
      expect(lookup.hit).toBe(false);
      const token = (lookup as { token: unknown }).token;
      expect(await backend.set(key, { value: i, async: true, dependencies: [key, `dep:${key}`], expiresAt: Infinity, sliding: 0 }, token)).toBe('stored');
    }
    for (const [i, key] of keys.entries()) {
      const lookup = await backend.get(key);
      expect(lookup.hit && lookup.value).toBe(i);
      expect(lookup.hit && lookup.dependencies).toEqual([key, `dep:${key}`]);
    }
    expect((await backend.invalidate([`dep:${keys[0]!}`])).removed).toEqual([keys[0]]);
    expect((await backend.invalidate([keys[5]!])).removed).toEqual([keys[5]]);
    expect((await backend.get(keys[1]!)).hit).toBe(true);
    expect((await backend.get(keys[3]!)).hit).toBe(true);
  });

  it('on a 3-master cluster (16 partitions): entries with lone-surrogate dependencies in every partition are removed by one invalidation, none collide', async () => {
    const cluster = clusterClient();
    await ready(cluster);
    const prefix = uniquePrefix('lone-cluster');
    const a = startProcess(cluster, prefix);
    const ids = Array.from({ length: 40 }, (_, i) => `${i}\ud800`);
    const rows = new Rows(a.service, new Map(ids.map((id, i) => [id, i])));
    for (const id of ids) await rows.row(id);
    expect(a.sets).toHaveLength(40);
    class Parent {
      runs = 0;
      constructor(service: CachingService) {
        bindCachingService(this, service);
      }
      @Cache()
      async all(): Promise<number[]> {
        this.runs++;
        return Promise.all(ids.map(id => rows.row(id)));
      }
    }
    const parent = new Parent(a.service);
    expect(await parent.all()).toEqual(ids.map((_, i) => i));
    await a.service.invalidate(`Row:${ids[7]!}`);
    expect(await parent.all()).toEqual(ids.map((_, i) => i));
    expect(parent.runs).toBe(2);
    expect(rows.runs).toBe(41);
    expect(a.errors).toEqual([]);
  });

  it('extends a sliding entry whose key holds a lone surrogate, and invalidates it', async () => {
    const prefix = uniquePrefix('lone-sliding');
    const a = startProcess(standaloneClient(), prefix);
    const id = '\udc00alone';
    const rows = new Rows(a.service, new Map([[id, 1]]));
    expect(await rows.sliding(id)).toBe(1);
    expect(await rows.sliding(id)).toBe(1);
    expect(rows.runs).toBe(1);
    await a.service.invalidate(`Row:${id}`);
    expect(await rows.sliding(id)).toBe(1);
    expect(rows.runs).toBe(2);
    expect(a.errors).toEqual([]);
  });

  it('a store script given an unreadable dependency list fails before its first write: no entry, no index, no marker', async () => {
    const prefix = uniquePrefix('validate-first');
    const client = standaloneClient();
    const a = startProcess(client, prefix);
    const token = await a.backend.begin('k');
    const base = `${prefix}ac2:{p0}:`;
    const script = client as unknown as { aspectCacheSet(...args: Array<string | number>): Promise<unknown> };
    const keys = [`${base}v:k`, `${base}c`, `${base}s`, `${base}g:k`];
    const { generation, serverTime } = token as { generation: string; serverTime: number };
    const failure: unknown = await script.aspectCacheSet(keys.length, ...keys, generation, serverTime, 120_000, 'payload', '["\\ud800"', 'none', 0, 0, '1', `${base}i:`, 'k', 1, '').then(
      () => undefined,
      (error: unknown) => error,
    );
    const left = await keysByKind(raw, prefix);
    expect(left.v).toEqual([]);
    expect(left.i).toEqual([]);
    expect(left.g).toEqual([]);
    expect(String((failure as Error | undefined)?.message)).toMatch(/invalid arguments/);
  });

  // ───────────── case 6: corrupt bookkeeping keys are repaired ─────────────

  it('repairs a dependency index holding a string: the invalidation lands (nothing left queued), its dependents are gone, the next store works', async () => {
    const prefix = uniquePrefix('corrupt-index');
    const a = startProcess(standaloneClient(), prefix);
    const rows = new Rows(a.service, new Map([['1', 1]]));
    expect(await rows.row('1')).toBe(1);
    const index = `${prefix}ac2:{p0}:i:Row:1`;
    expect(await raw.type(index)).toBe('zset');
    await raw.del(index);
    await raw.set(index, 'not a sorted set');

    rows.db.set('1', 2);
    await a.service.invalidate('Row:1');
    expect(a.backend.pendingInvalidations).toBe(0);
    expect(await rows.row('1')).toBe(2); // the dependent could not be found through its index: the partition was emptied
    expect(rows.runs).toBe(2);
    expect(await raw.type(index)).toBe('zset');
    expect(await rows.row('1')).toBe(2);
    expect(rows.runs).toBe(2);
    expect(a.errors.some(e => /dependency index of another type/.test(String((e.error as Error).message)))).toBe(true);
  });

  it('on a 3-master cluster: repairs a dependency index holding a string, and only its partition is emptied', async () => {
    const cluster = clusterClient();
    await ready(cluster);
    const prefix = uniquePrefix('corrupt-index-cluster');
    const a = startProcess(cluster, prefix);
    const ids = Array.from({ length: 24 }, (_, i) => String(i));
    const rows = new Rows(a.service, new Map(ids.map((id, i) => [id, i])));
    for (const id of ids) await rows.row(id);
    const entry = a.backend.entryKey(rowKey('3'));
    const base = entry.slice(0, entry.indexOf('v:'));
    const index = `${base}i:Row:3`;
    expect(await cluster.type(index)).toBe('zset');
    await cluster.del(index);
    await cluster.set(index, 'not a sorted set');

    rows.db.set('3', 30);
    await a.service.invalidate('Row:3');
    expect(a.backend.pendingInvalidations).toBe(0);
    expect(await rows.row('3')).toBe(30);
    const samePartition = ids.filter(id => a.backend.entryKey(rowKey(id)).startsWith(base));
    for (const id of ids) await rows.row(id);
    // Entries of the corrupt index's partition were computed again, the others were hits.
    expect(rows.runs).toBe(24 + samePartition.length);
    expect(samePartition.length).toBeLessThan(24);
  });

  it('repairs a dependency index holding a string found by a store: that store is refused, the entry it indexed is removed, the next store works', async () => {
    const prefix = uniquePrefix('corrupt-index-store');
    const a = startProcess(standaloneClient(), prefix);
    const rows = new Rows(a.service, new Map([['1', 1]]));
    const index = `${prefix}ac2:{p0}:i:Row:1`;
    await raw.set(index, 'not a sorted set');
    expect(await rows.row('1')).toBe(1);
    expect(a.skips.map(s => s.reason)).toEqual(['stale']);
    expect(await rows.row('1')).toBe(1);
    expect(a.sets).toEqual([rowKey('1')]);
    expect(await rows.row('1')).toBe(1);
    expect(rows.runs).toBe(2);
  });

  for (const [label, corrupt] of [
    ['a non-numeric string', (client: RedisClient, key: string) => client.set(key, 'garbage')],
    ['a hash', (client: RedisClient, key: string) => client.hset(key, 'x', '1')],
  ] as const) {
    it(`repairs a partition generation holding ${label}: values are stored again, and a write that began before is still refused after an invalidation`, async () => {
      const prefix = uniquePrefix('corrupt-seq');
      const a = startProcess(standaloneClient(), prefix);
      const rows = new Rows(a.service, new Map([['1', 1]]));
      const seq = `${prefix}ac2:{p0}:s`;

      // A computation takes its token, then the generation is corrupted, then the row is invalidated.
      rows.gate = deferred();
      const inFlight = rows.row('1');
      await rows.started.promise;
      await corrupt(raw, seq);
      rows.db.set('1', 2);
      await a.service.invalidate('Row:1');
      rows.gate.resolve();
      rows.gate = undefined;
      expect(await inFlight).toBe(1);
      expect(a.skips.map(s => s.reason)).toEqual(['stale']); // never a stale write, even across the reset

      await corrupt(raw, `${seq}`).catch(() => undefined);
      expect(await rows.row('1')).toBe(2);
      expect(a.sets).toEqual([rowKey('1')]);
      expect(await rows.row('1')).toBe(2);
      expect(rows.runs).toBe(2);
    });
  }

  it('repairs a clear marker or an invalidation marker that is not a generation: the store that finds it is refused, the next one is stored', async () => {
    const prefix = uniquePrefix('corrupt-marker');
    const a = startProcess(standaloneClient(), prefix);
    const rows = new Rows(a.service, new Map([['1', 1], ['2', 2]]));
    await raw.set(`${prefix}ac2:{p0}:c`, 'garbage');
    await raw.hset(`${prefix}ac2:{p0}:g:Row:2`, 'x', '1');

    expect(await rows.row('1')).toBe(1);
    expect(await rows.row('2')).toBe(2);
    expect(a.skips.map(s => s.reason)).toEqual(['stale', 'stale']);
    expect(await rows.row('1')).toBe(1);
    expect(await rows.row('2')).toBe(2);
    expect(a.sets).toEqual([rowKey('1'), rowKey('2')]);
    expect(await rows.row('1')).toBe(1);
    expect(await rows.row('2')).toBe(2);
    expect(rows.runs).toBe(4);
    expect(a.errors).toEqual([]);
  });

  it('replaces a lease key that never expires (lock: true): the value is computed and stored without waiting for it', async () => {
    const prefix = uniquePrefix('corrupt-lease');
    const a = startProcess(standaloneClient(), prefix, { lock: { leaseMs: 60_000, pollMs: 10 } });
    const rows = new Rows(a.service, new Map([['1', 1]]));
    await raw.set(`${prefix}ac2:{p0}:l:${rowKey('1')}`, 'a lease without expiry');
    const started = Date.now();
    expect(await rows.row('1')).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(a.sets).toEqual([rowKey('1')]);
    await waitUntil(async () => (await raw.exists(`${prefix}ac2:{p0}:l:${rowKey('1')}`)) === 0, 2_000, () => 'the lease was not released');
  });

  // ───────────── case 7: values round-trip faithfully or are skipped, naming the type ─────────────

  it('round-trips Buffer, typed arrays (NaN, -0, bigints), ArrayBuffer, DataView and an invalid Date through Redis', async () => {
    const prefix = uniquePrefix('binary');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const make = () => ({
      buffer: Buffer.from('hello world').subarray(6),
      floats: new Float64Array([Number.NaN, -0, Infinity]),
      bigints: new BigInt64Array([1n, -2n]),
      bytes: new Uint8Array([1, 2, 3]),
      arrayBuffer: new Uint8Array([9, 8, 7]).buffer,
      view: new DataView(new Uint8Array([5, 6]).buffer),
      invalid: new Date(Number.NaN),
      valid: new Date(0),
    });
    await new Values(a.service, make).value();
    expect(a.sets).toEqual(['Values.value()']);
    const other = new Values(b.service, make);
    const back = (await other.value()) as ReturnType<typeof make>;
    expect(other.runs).toBe(0); // a hit in the other process
    expect(Buffer.isBuffer(back.buffer) && back.buffer.toString()).toBe('world');
    expect(back.floats).toBeInstanceOf(Float64Array);
    expect(Number.isNaN(back.floats[0])).toBe(true);
    expect(Object.is(back.floats[1], -0)).toBe(true);
    expect(back.floats[2]).toBe(Infinity);
    expect([...back.bigints]).toEqual([1n, -2n]);
    expect(back.bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.isBuffer(back.bytes)).toBe(false);
    expect([...back.bytes]).toEqual([1, 2, 3]);
    expect(back.arrayBuffer).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(back.arrayBuffer)]).toEqual([9, 8, 7]);
    expect(back.view).toBeInstanceOf(DataView);
    expect(back.view.getUint8(1)).toBe(6);
    expect(back.invalid).toBeInstanceOf(Date);
    expect(Number.isNaN(back.invalid.getTime())).toBe(true);
    expect(back.valid.getTime()).toBe(0);
    expect(b.errors).toEqual([]);
  });

  it('still round-trips a registered class with its prototype, nested values included', async () => {
    const prefix = uniquePrefix('registered');
    const a = startProcess(standaloneClient(), prefix);
    const b = startProcess(standaloneClient(), prefix);
    const make = () => [new Registered('ada', new Date(5))];
    await new Values(a.service, make).value();
    const other = new Values(b.service, make);
    const [back] = (await other.value()) as Registered[];
    expect(other.runs).toBe(0);
    expect(back).toBeInstanceOf(Registered);
    expect(back!.greet()).toBe('hello ada');
    expect(back!.at.getTime()).toBe(5);
  });

  for (const [label, make, detail] of [
    ['an unregistered class instance', () => ({ items: [new Unregistered('x')] }), /instance of Unregistered at \.items\[0\].*registerClass/],
    ['a sparse array', () => ({ list: [1, , 3] }), /sparse array \(hole at index 1\) at \.list/],
    ['an Error', () => new TypeError('boom'), /error \(TypeError\)/],
    ['a Map subclass', () => new Registry(), /instance of Registry/],
    ['a symbol-keyed property', () => ({ [Symbol('tag')]: 1 }), /symbol-keyed property \(tag\)/],
  ] as const) {
    it(`does not store ${label}: the value is returned, the store is skipped with reason not-serializable and a detail naming it`, async () => {
      const prefix = uniquePrefix('refused');
      const a = startProcess(standaloneClient(), prefix);
      const values = new Values(a.service, make);
      const first = await values.value();
      expect(Object.getPrototypeOf(first)).toBe(Object.getPrototypeOf(make())); // the caller gets its value
      await values.value();
      expect(values.runs).toBe(2);
      expect(a.sets).toEqual([]);
      expect(a.skips).toHaveLength(2);
      expect(a.skips[0]!.reason).toBe('not-serializable');
      expect(a.skips[0]!.detail).toMatch(detail);
      expect((await keysByKind(raw, prefix)).v).toEqual([]);
    });
  }
});
