// The NestJS application of the sample: a catalogue service with @Cache / @InvalidateCache, a controller over
// it, and the CachingModule that makes both use its CachingService. Nest's decorators are legacy ones: this
// folder has its own tsconfig with experimentalDecorators. tsx (esbuild) emits no decorator metadata, so
// constructor parameters name their providers with @Inject(...) instead of relying on their types.
import { Body, Controller, Get, Inject, Injectable, Module, NotFoundException, Param, Put } from '@nestjs/common';
import { addDependency, Cache, InvalidateCache } from 'aspect-cache';
import { CachingModule } from 'aspect-cache/nestjs';

export interface Product {
  readonly id: string;
  readonly name: string;
  readonly price: number;
}

/** The "database": a map, and a count of the queries that reached it. */
@Injectable()
export class Database {
  queries = 0;
  readonly #products = new Map<string, Product>([
    ['corn', { id: 'corn', name: 'Corn', price: 100 }],
    ['rice', { id: 'rice', name: 'Rice', price: 250 }],
  ]);

  async find(id: string): Promise<Product | undefined> {
    this.queries++;
    return this.#products.get(id);
  }

  async ids(): Promise<string[]> {
    this.queries++;
    return [...this.#products.keys()];
  }

  async setPrice(id: string, price: number): Promise<void> {
    this.queries++;
    const product = this.#products.get(id);
    if (product !== undefined) this.#products.set(id, { ...product, price });
  }
}

@Injectable()
export class CatalogueService {
  constructor(@Inject(Database) private readonly db: Database) {}

  /** One product; its entry depends on `Product:<id>`. */
  @Cache()
  async product(id: string): Promise<Product | undefined> {
    addDependency(`Product:${id}`);
    return this.db.find(id);
  }

  /** Every product, built from the cached product() calls: it depends on each of them. */
  @Cache()
  async catalogue(): Promise<Product[]> {
    addDependency('ProductList');
    const products = await Promise.all((await this.db.ids()).map(id => this.product(id)));
    return products.filter((p): p is Product => p !== undefined);
  }

  /** Removes product(id), and so the catalogue built from it, after the write succeeded. */
  @InvalidateCache('product')
  async setPrice(id: string, price: number): Promise<void> {
    await this.db.setPrice(id, price);
  }
}

@Controller('products')
export class ProductsController {
  constructor(@Inject(CatalogueService) private readonly catalogue: CatalogueService) {}

  @Get()
  async list(): Promise<Product[]> {
    return this.catalogue.catalogue();
  }

  // @Cache on a route handler, written above @Get: the route keeps its path (the metadata @Get wrote).
  @Cache({ ttl: 60_000 })
  @Get('cheapest')
  async cheapest(): Promise<Product> {
    const all = await this.catalogue.catalogue();
    return all.reduce((a, b) => (b.price < a.price ? b : a));
  }

  @Get(':id')
  async one(@Param('id') id: string): Promise<Product> {
    const product = await this.catalogue.product(id);
    if (product === undefined) throw new NotFoundException(`no product ${id}`);
    return product;
  }

  @Put(':id/price')
  async setPrice(@Param('id') id: string, @Body() body: { price: number }): Promise<{ id: string; price: number }> {
    await this.catalogue.setPrice(id, body.price);
    return { id, price: body.price };
  }
}

@Module({
  // A memory backend by default; pass { backend } (a LayeredBackend over Redis, say) for several processes.
  imports: [CachingModule.forRoot({ keyPrefix: 'shop:', defaults: { ttl: 300_000 } })],
  providers: [Database, CatalogueService],
  controllers: [ProductsController],
})
export class AppModule {}
