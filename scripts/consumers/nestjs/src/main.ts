// A NestJS app as a user writes it: CachingModule.forRoot, no bindCachingService anywhere. Checks that the
// service's and the controller's cached methods are cached in the module's service, that @InvalidateCache
// (and the nested dependency) invalidate, and that routes keep their @Get metadata with @Cache above or below.
import 'reflect-metadata';
import assert from 'node:assert/strict';
import { Body, Controller, Get, Injectable, Module, Param, Put } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { addDependency, Cache, CachingService, InvalidateCache } from 'aspect-cache';
import { CachingModule } from 'aspect-cache/nestjs';

const prices = new Map<string, number>([['corn', 100], ['wheat', 80]]);
const reads = { price: 0, cheapest: 0 };

@Injectable()
class Catalogue {
  @Cache()
  async price(id: string): Promise<number> {
    reads.price++;
    addDependency(`Price:${id}`);
    return prices.get(id) ?? 0;
  }

  @InvalidateCache('price')
  async setPrice(id: string, price: number): Promise<void> {
    prices.set(id, price);
  }
}

@Controller('products')
class ProductsController {
  constructor(private readonly catalogue: Catalogue) {}

  @Cache()
  @Get('cheapest')
  async cheapest(): Promise<{ id: string }> {
    reads.cheapest++;
    let best = '';
    for (const id of prices.keys()) if (best === '' || (await this.catalogue.price(id)) < (await this.catalogue.price(best))) best = id;
    return { id: best };
  }

  @Get(':id')
  @Cache()
  async one(@Param('id') id: string): Promise<{ id: string; price: number }> {
    return { id, price: await this.catalogue.price(id) };
  }

  @Put(':id')
  async update(@Param('id') id: string, @Body() body: { price: number }): Promise<void> {
    await this.catalogue.setPrice(id, body.price);
  }
}

@Module({ imports: [CachingModule.forRoot({ keyPrefix: 'consumer:' })], providers: [Catalogue], controllers: [ProductsController] })
class AppModule {}

const app = await NestFactory.create(AppModule, { logger: false });
await app.listen(0, '127.0.0.1');
const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
const get = async (path: string) => {
  const response = await fetch(base + path);
  assert.equal(response.status, 200, `GET ${path} answered ${response.status}`);
  return response.json();
};

assert.deepEqual(await get('/products/corn'), { id: 'corn', price: 100 }); // @Cache below @Get: route registered
assert.deepEqual(await get('/products/corn'), { id: 'corn', price: 100 });
assert.equal(reads.price, 1, 'the second GET is served from cache');
assert.deepEqual(await get('/products/cheapest'), { id: 'wheat' }); // @Cache above @Get: route kept (not taken by :id)
assert.equal(reads.cheapest, 1);
await get('/products/cheapest');
assert.equal(reads.cheapest, 1, 'cheapest is cached');
const caching = app.get(CachingService);
assert.ok(caching instanceof CachingService, 'the module provides the CachingService');
assert.ok(caching.stats().hits >= 2, 'hits are counted in the module service');

const put = await fetch(`${base}/products/wheat`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ price: 120 }) });
assert.equal(put.status, 200);
assert.deepEqual(await get('/products/cheapest'), { id: 'corn' }, 'the nested price dependency invalidated the cached route');
assert.equal(reads.cheapest, 2);
await app.close();
console.log('nestjs consumer ok: cached, invalidated through a nested call, routes kept in both orders');
