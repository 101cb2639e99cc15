// aspect-cache/testing without vitest: the fake clock, the chaos backend and the test bus work; only
// describeBackendConformance needs vitest, and says so.
import assert from 'node:assert/strict';
import { CachingError, CachingService, MemoryBackend } from 'aspect-cache';
import { ChaosBackend, describeBackendConformance, FakeClock, TestBusNetwork } from 'aspect-cache/testing';

assert.throws(() => import.meta.resolve('vitest'), 'vitest must not be installed in this project');

const clock = new FakeClock();
const start = clock.now();
clock.advance(1_500);
assert.equal(clock.now() - start, 1_500);

const chaos = new ChaosBackend(new MemoryBackend({ clock }));
const caching = new CachingService({ backend: chaos, clock });
chaos.fail('get');
await assert.rejects(async () => chaos.get('k'));
chaos.heal();
const miss = await chaos.get('k');
assert.equal(miss.hit, false);

const network = new TestBusNetwork();
const a = network.connect('a');
const b = network.connect('b');
const received = [];
b.subscribe({ onMessage: payload => received.push(payload), onConnection: () => {} });
await a.publish('hello');
await new Promise(resolve => setTimeout(resolve, 10));
assert.deepEqual(received, ['hello']);

assert.throws(
  () => describeBackendConformance('MemoryBackend', { create: () => new MemoryBackend() }),
  error => error instanceof CachingError && error.code === 'E_MISSING_PEER' && /vitest/.test(error.message),
);
await caching.dispose();
console.log('FakeClock, ChaosBackend and TestBusNetwork work without vitest; describeBackendConformance throws E_MISSING_PEER');
