// TypeScript compiled to CommonJS with legacy decorators: `import` becomes require() of the ESM-only package.
import assert from 'node:assert/strict';
import { Cache, CachingService, InvalidateCache, MemoryBackend } from 'aspect-cache';

CachingService.default = new CachingService({ backend: new MemoryBackend() });

let computed = 0;
class Prices {
  @Cache({ ttl: 60_000 })
  async get(id: string): Promise<string> {
    computed++;
    return `${id}:${computed}`;
  }

  @InvalidateCache('get')
  async update(id: string): Promise<string> {
    return id;
  }
}

async function main(): Promise<void> {
  const prices = new Prices();
  assert.equal(await prices.get('a'), 'a:1');
  assert.equal(await prices.get('a'), 'a:1');
  await prices.update('a');
  assert.equal(await prices.get('a'), 'a:2');
  console.log('TypeScript compiled to CommonJS requires aspect-cache; legacy decorators work');
}
main().catch(error => {
  console.error(error);
  process.exitCode = 1;
});
