// Starts the NestJS sample on a free port, makes a few HTTP requests itself, prints what the cache did for
// each (how many queries reached the database), and shuts the application down (which disposes the cache).
// Run: npm run sample:nestjs
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { CachingService } from 'aspect-cache';
import { AppModule, CatalogueService, Database } from './app.js';

const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
await app.listen(0, '127.0.0.1');
const { port } = app.getHttpServer().address() as AddressInfo;
const db = app.get(Database);
const caching = app.get(CachingService);

async function request(method: string, path: string, body?: unknown): Promise<void> {
  const [queries, stats] = [db.queries, caching.stats()];
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body !== undefined ? { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}),
  });
  const text = await response.text();
  const after = caching.stats();
  console.log(`${`${method} ${path}`.padEnd(24)} ${response.status} ${text}`);
  console.log(`${''.padEnd(24)} database queries: ${db.queries - queries}, cache hits: ${after.hits - stats.hits}, misses: ${after.misses - stats.misses}`);
}

await request('GET', '/products/corn');
await request('GET', '/products/corn');
await request('GET', '/products');
await request('GET', '/products');
await request('GET', '/products/cheapest');
await request('GET', '/products/cheapest');
await request('PUT', '/products/corn/price', { price: 300 });
await request('GET', '/products/corn');
await request('GET', '/products');
await request('GET', '/products/cheapest');
await request('GET', '/products/wheat');

const stats = caching.stats();
console.log(`total: ${db.queries} database queries, ${stats.hits} cache hits, ${stats.misses} misses, ${stats.invalidations} invalidation`);
// The sample's claims, so that a regression exits non-zero: 11 requests, 7 queries, one invalidation.
assert.equal(db.queries, 7);
assert.equal(stats.invalidations, 1);

const catalogue = app.get(CatalogueService);
await app.close();
// The module created the service, so closing the application disposed it.
await assert.rejects(catalogue.product('corn'), { code: 'E_DISPOSED' });
console.log('application closed; its CachingService was disposed with it');
