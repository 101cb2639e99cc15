import { Controller, Get, Inject, Injectable, Module, Param, Post, Scope, SetMetadata, UseGuards, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { AddressInfo } from 'node:net';
import { ContextIdFactory, Reflector } from '@nestjs/core';
import { Test, type TestingModule } from '@nestjs/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, InvalidateCache, MemoryBackend } from 'aspect-cache';
import { CachingModule } from 'aspect-cache/nestjs';

// SPEC §15: CachingModule provides the CachingService, and every provider and controller with cached methods
// uses it without further code. Nest's decorators are legacy ones (this file runs in the legacy project, with
// emitDecoratorMetadata for constructor injection by type).

const calls = { price: 0, product: 0, listing: 0, warm: 0, request: 0, transient: 0, route: 0 };
const prices = new Map<string, number>();

function reset(): void {
  for (const key of Object.keys(calls) as Array<keyof typeof calls>) calls[key] = 0;
  prices.clear();
  prices.set('corn', 1).set('rice', 2);
}

@Injectable()
class PriceService {
  @Cache()
  async price(id: string): Promise<number> {
    calls.price++;
    return prices.get(id)!;
  }

  @InvalidateCache('price')
  async setPrice(id: string, price: number): Promise<void> {
    prices.set(id, price);
  }
}

@Injectable()
class ProductRepository {
  @Cache()
  async product(id: string): Promise<{ id: string; price: number }> {
    calls.product++;
    addDependency(`product:${id}`);
    return { id, price: prices.get(id)! };
  }
}

@Injectable()
class ListingService {
  constructor(private readonly products: ProductRepository) {}

  @Cache()
  async listing(): Promise<string> {
    calls.listing++;
    const corn = await this.products.product('corn');
    return `corn at ${corn.price}`;
  }
}

const opened: Array<{ close(): Promise<void> }> = [];

async function boot(imports: unknown[], providers: unknown[] = [PriceService, ProductRepository, ListingService]): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({ imports: imports as never[], providers: providers as never[] }).compile();
  opened.push(moduleRef);
  await moduleRef.init();
  return moduleRef;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map(m => m.close()));
});

describe('CachingModule.forRoot', () => {
  it("a provider's @Cache method caches in the module's service, without bindCachingService", async () => {
    reset();
    const moduleRef = await boot([CachingModule.forRoot({ keyPrefix: 'nest:', setDefault: false })]);
    const caching = moduleRef.get(CachingService);
    const prices = moduleRef.get(PriceService);
    const stored: string[] = [];
    caching.on('set', event => stored.push(event.key));
    expect(caching).not.toBe(CachingService.default);
    expect(caching.keyPrefix).toBe('nest:');
    await expect(prices.price('corn')).resolves.toBe(1);
    await expect(prices.price('corn')).resolves.toBe(1);
    expect(calls.price).toBe(1);
    expect(caching.stats()).toMatchObject({ misses: 1, hits: 1, sets: 1 });
    // The entry is in the module's backend, under its prefix.
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatch(/^nest:PriceService\.price/);
    expect((caching.backend as MemoryBackend).peek(stored[0]!)?.value).toBe(1);
  });

  it('@InvalidateCache invalidates in the module service', async () => {
    reset();
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })]);
    const caching = moduleRef.get(CachingService);
    const service = moduleRef.get(PriceService);
    await service.price('corn');
    await service.setPrice('corn', 7);
    await expect(service.price('corn')).resolves.toBe(7);
    expect(calls.price).toBe(2);
    expect(caching.stats().invalidations).toBe(1);
  });

  it("a nested cached call's dependency invalidates the parent across providers", async () => {
    reset();
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })]);
    const caching = moduleRef.get(CachingService);
    const listings = moduleRef.get(ListingService);
    await expect(listings.listing()).resolves.toBe('corn at 1');
    await listings.listing();
    expect(calls).toMatchObject({ listing: 1, product: 1 });
    prices.set('corn', 3);
    await caching.invalidate('product:corn');
    await expect(listings.listing()).resolves.toBe('corn at 3');
    expect(calls).toMatchObject({ listing: 2, product: 2 });
  });

  it('provides a service passed as { service } and does not dispose it on shutdown', async () => {
    reset();
    const mine = new CachingService({ keyPrefix: 'mine:' });
    const moduleRef = await boot([CachingModule.forRoot({ service: mine, setDefault: false })]);
    expect(moduleRef.get(CachingService)).toBe(mine);
    await moduleRef.get(PriceService).price('corn');
    expect(mine.stats().misses).toBe(1);
    await moduleRef.close();
    opened.length = 0;
    await expect(moduleRef.get(PriceService).price('corn')).resolves.toBe(1); // still usable: not disposed
    expect(mine.stats().hits).toBe(1);
    await mine.dispose();
  });

  it('disposes the service it created on application shutdown', async () => {
    reset();
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })]);
    const service = moduleRef.get(PriceService);
    await service.price('corn');
    await moduleRef.close();
    opened.length = 0;
    await expect(service.price('corn')).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });

  it('two applications in one process each use their own service', async () => {
    reset();
    // Default settings (setDefault: true): the default is the last app's service, yet each app's singletons
    // are bound to their own.
    @Module({ imports: [CachingModule.forRoot()], providers: [PriceService], exports: [PriceService] })
    class AppModule {}
    const first = await boot([AppModule], []);
    const second = await boot([AppModule], []);
    const [a, b] = [first.get(CachingService), second.get(CachingService)];
    expect(a).not.toBe(b);
    await first.get(PriceService).price('corn');
    await first.get(PriceService).price('corn');
    await second.get(PriceService).price('corn');
    expect(calls.price).toBe(2); // no entry shared
    expect(a.stats()).toMatchObject({ misses: 1, hits: 1 });
    expect(b.stats()).toMatchObject({ misses: 1, hits: 0 });
    await first.get(PriceService).setPrice('corn', 9);
    await expect(second.get(PriceService).price('corn')).resolves.toBe(1); // b's entry was not invalidated by a
  });

  it("binds before other providers' onModuleInit, so warming at start-up uses the module's service", async () => {
    reset();
    @Injectable()
    class Warmer {
      constructor(private readonly prices: PriceService) {}
      async onModuleInit(): Promise<void> {
        calls.warm++;
        await this.prices.price('rice');
      }
    }
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })], [PriceService, Warmer]);
    expect(calls.warm).toBe(1);
    expect(moduleRef.get(CachingService).stats().misses).toBe(1);
    await moduleRef.get(PriceService).price('rice');
    expect(calls.price).toBe(1);
  });

  it('binds transient instances created at start-up', async () => {
    reset();
    @Injectable({ scope: Scope.TRANSIENT })
    class Helper {
      @Cache()
      async twice(n: number): Promise<number> {
        calls.transient++;
        return n * 2;
      }
    }
    @Injectable()
    class User {
      constructor(readonly helper: Helper) {}
    }
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })], [Helper, User]);
    const helper = moduleRef.get(User).helper;
    await helper.twice(2);
    await helper.twice(2);
    expect(calls.transient).toBe(1);
    expect(moduleRef.get(CachingService).stats()).toMatchObject({ misses: 1, hits: 1 });
  });

  it('keeps a service an instance bound itself', async () => {
    reset();
    const own = new CachingService();
    @Injectable()
    class SelfBound {
      constructor() {
        bindCachingService(this, own);
      }
      @Cache()
      async value(): Promise<number> {
        return 1;
      }
    }
    const moduleRef = await boot([CachingModule.forRoot({ setDefault: false })], [SelfBound]);
    await moduleRef.get(SelfBound).value();
    expect(own.stats().misses).toBe(1);
    expect(moduleRef.get(CachingService).stats().misses).toBe(0);
    await own.dispose();
  });

  it('rejects unknown options, naming them', () => {
    expect(() => CachingModule.forRoot({ prefix: 'x' } as never)).toThrow(CachingError);
    expect(() => CachingModule.forRoot({ prefix: 'x' } as never)).toThrow(/CachingModule\.forRoot: unknown option 'prefix'; did you mean 'keyPrefix'\?/);
    expect(() => CachingModule.forRoot({ service: new CachingService(), keyPrefix: 'x' } as never)).toThrow(/option service comes with its own options; remove 'keyPrefix'/);
    expect(() => CachingModule.forRoot({ global: 'yes' } as never)).toThrow(/option global must be true or false/);
    expect(() => CachingModule.forRootAsync({ useFactory: 1 } as never)).toThrow(/useFactory must be a function/);
  });
});

describe('setDefault', () => {
  it("makes the module's service the default while the application lives, then restores the previous default", async () => {
    reset();
    const before = new CachingService();
    CachingService.default = before;
    const moduleRef = await boot([CachingModule.forRoot({})]);
    const caching = moduleRef.get(CachingService);
    expect(CachingService.default).toBe(caching);
    await moduleRef.close();
    opened.length = 0;
    expect(CachingService.default).toBe(before);
    await before.dispose();
  });

  it("a REQUEST-scoped provider's cached method uses the module's service", async () => {
    reset();
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @Cache()
      async lookup(id: string): Promise<string> {
        calls.request++;
        return `value of ${id}`;
      }
    }
    const moduleRef = await boot([CachingModule.forRoot({})], [PerRequest]);
    const caching = moduleRef.get(CachingService);
    const first = await moduleRef.resolve(PerRequest, ContextIdFactory.create());
    const second = await moduleRef.resolve(PerRequest, ContextIdFactory.create());
    expect(first).not.toBe(second);
    await first.lookup('a');
    await second.lookup('a');
    expect(calls.request).toBe(1);
    expect(caching.stats()).toMatchObject({ misses: 1, hits: 1 });
  });
  it('a request-scoped call uses the module service even after an unbound call already used the default', async () => {
    reset();
    class Unbound {
      @Cache()
      async value(): Promise<number> {
        return 1;
      }
    }
    await new Unbound().value(); // the unbound fallback now resolves to the lazily created default
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {
      @Cache()
      async lookup(id: string): Promise<string> {
        calls.request++;
        return `value of ${id}`;
      }
    }
    const moduleRef = await boot([CachingModule.forRoot({})], [PerRequest]);
    const caching = moduleRef.get(CachingService);
    await (await moduleRef.resolve(PerRequest, ContextIdFactory.create())).lookup('a');
    expect(caching.stats().misses).toBe(1);
  });
});

describe('CachingModule.forRootAsync', () => {
  const CONFIG = Symbol('config');

  @Module({ providers: [{ provide: CONFIG, useValue: { prefix: 'cfg:', maxEntries: 5 } }], exports: [CONFIG] })
  class ConfigModule {}

  it('creates the service from the options an async factory returns, with injected config, and disposes it', async () => {
    reset();
    const moduleRef = await boot([
      CachingModule.forRootAsync({
        imports: [ConfigModule],
        inject: [CONFIG],
        setDefault: false,
        useFactory: async (config: { prefix: string; maxEntries: number }) => {
          await Promise.resolve();
          return { keyPrefix: config.prefix, backend: new MemoryBackend({ maxEntries: config.maxEntries }) };
        },
      }),
    ]);
    const caching = moduleRef.get(CachingService);
    expect(caching.keyPrefix).toBe('cfg:');
    const service = moduleRef.get(PriceService);
    await service.price('corn');
    await service.price('corn');
    expect(caching.stats()).toMatchObject({ misses: 1, hits: 1 });
    await moduleRef.close();
    opened.length = 0;
    await expect(service.price('corn')).rejects.toMatchObject({ code: 'E_DISPOSED' });
  });

  it('provides a CachingService the factory returns, and leaves it to its creator', async () => {
    reset();
    const made = new CachingService({ keyPrefix: 'made:' });
    const moduleRef = await boot([CachingModule.forRootAsync({ inject: [], setDefault: false, useFactory: () => made })]);
    expect(moduleRef.get(CachingService)).toBe(made);
    await moduleRef.close();
    opened.length = 0;
    await expect(moduleRef.get(PriceService).price('corn')).resolves.toBe(1);
    await made.dispose();
  });

  it('reports a factory result that is neither a service nor options', async () => {
    const compiled = Test.createTestingModule({ imports: [CachingModule.forRootAsync({ useFactory: () => null as never })] }).compile();
    await expect(compiled).rejects.toThrow(/CachingModule\.forRootAsync: useFactory returned null; return a CachingService or CachingService options/);
    const misspelt = Test.createTestingModule({ imports: [CachingModule.forRootAsync({ useFactory: () => ({ prefix: 'x' }) as never })] }).compile();
    await expect(misspelt).rejects.toThrow(/unknown option 'prefix'; did you mean 'keyPrefix'\?/);
  });
});

describe('over HTTP (platform-express)', () => {
  const ROLES = 'roles';

  @Injectable()
  class RolesGuard implements CanActivate {
    constructor(@Inject(Reflector) private readonly reflector: Reflector) {}
    canActivate(context: ExecutionContext): boolean {
      // Denies unless the route's @SetMetadata survived: a lost metadata entry shows as a 403.
      const roles = this.reflector.get<string[] | undefined>(ROLES, context.getHandler());
      return roles?.includes('reader') === true;
    }
  }

  @Controller('catalogue')
  @UseGuards(RolesGuard)
  class CatalogueController {
    constructor(private readonly prices: PriceService) {}

    @Cache()
    @Get('above/:id')
    @SetMetadata(ROLES, ['reader'])
    async above(@Param('id') id: string): Promise<{ id: string; price: number; route: string }> {
      calls.route++;
      return { id, price: await this.prices.price(id), route: 'above' };
    }

    @Get('below/:id')
    @SetMetadata(ROLES, ['reader'])
    @Cache()
    async below(@Param('id') id: string): Promise<{ id: string; price: number; route: string }> {
      calls.route++;
      return { id, price: await this.prices.price(id), route: 'below' };
    }

    @InvalidateCache('above', 'below')
    @Post('above/:id/touch')
    @SetMetadata(ROLES, ['reader'])
    async touch(@Param('id') id: string): Promise<{ touched: string }> {
      return { touched: id };
    }
  }

  it('routes keep their metadata with @Cache above and below @Get, and controllers cache in the module service', async () => {
    reset();
    const moduleRef = await Test.createTestingModule({
      imports: [CachingModule.forRoot({ setDefault: false })],
      controllers: [CatalogueController],
      providers: [PriceService, RolesGuard],
    }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    opened.push(app);
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    const get = async (path: string, method = 'GET') => {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      return { status: response.status, body: await response.json() };
    };
    expect(await get('/catalogue/above/corn')).toEqual({ status: 200, body: { id: 'corn', price: 1, route: 'above' } });
    expect(await get('/catalogue/above/corn')).toEqual({ status: 200, body: { id: 'corn', price: 1, route: 'above' } });
    expect(await get('/catalogue/below/rice')).toEqual({ status: 200, body: { id: 'rice', price: 2, route: 'below' } });
    expect(await get('/catalogue/below/rice')).toEqual({ status: 200, body: { id: 'rice', price: 2, route: 'below' } });
    expect(calls.route).toBe(2);
    const caching = moduleRef.get(CachingService);
    expect(caching.stats()).toMatchObject({ hits: 2 });
    expect((await get('/catalogue/above/corn/touch', 'POST')).status).toBe(201);
    expect(await get('/catalogue/above/corn')).toEqual({ status: 200, body: { id: 'corn', price: 1, route: 'above' } });
    expect(calls.route).toBe(3);
    expect(await get('/catalogue/missing')).toMatchObject({ status: 404 });
  });
});
