// require() of the ESM-only package from CommonJS, then the decorators applied by hand in the legacy shape.
const assert = require('node:assert/strict');
const { Cache, CachingService, InvalidateCache, MemoryBackend } = require('aspect-cache');
const { FakeClock } = require('aspect-cache/testing');

const clock = new FakeClock();
CachingService.default = new CachingService({ backend: new MemoryBackend({ clock }), clock });

let computed = 0;
class Prices {
  get(id) {
    computed++;
    return `${id}:${computed}`;
  }
  update(id) {
    return id;
  }
}
for (const [name, decorator] of [['get', Cache({ ttl: 60_000 })], ['update', InvalidateCache('get')]]) {
  const descriptor = Object.getOwnPropertyDescriptor(Prices.prototype, name);
  Object.defineProperty(Prices.prototype, name, decorator(Prices.prototype, name, descriptor) ?? descriptor);
}

const prices = new Prices();
assert.equal(prices.get('a'), 'a:1');
assert.equal(prices.get('a'), 'a:1', 'the second call is served from the cache');
prices.update('a');
assert.equal(prices.get('a'), 'a:2', 'the invalidated entry is computed again');
console.log('require("aspect-cache") works; @Cache and @InvalidateCache work from CommonJS');
