// The ProductCatalogue with object dependencies: a Product is its own cache dependency (its key is its name)
// and cascades to the whole catalogue, so updating one product also invalidates everything computed from the
// catalogue, but not the other products. Run: npm run sample:object-dependencies
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { addDependency, Cache, CachingService, StringDependency, type CacheDependency } from 'aspect-cache';

/** Everything computed from the catalogue as a whole depends on this; every product cascades to it. */
const productCatalogueDependency = new StringDependency('ProductCatalogue');

class Product implements CacheDependency {
  constructor(
    readonly name: string,
    readonly price: number,
  ) {}

  getCacheKey(): string {
    return this.name;
  }

  get cascadeDependencies(): CacheDependency[] {
    return [productCatalogueDependency];
  }

  toString(): string {
    return `Product { Name = ${this.name}, Price = ${this.price} }`;
  }

  // console.log(product) prints the same text as `${product}`.
  [inspect.custom](): string {
    return this.toString();
  }
}

class ProductCatalogue {
  readonly #products = new Map<string, Product>([['corn', new Product('corn', 100)]]);
  dbOperationCount = 0;

  @Cache()
  getProducts(): string[] {
    console.log('Getting the product list from database.');
    this.dbOperationCount++;
    addDependency('ProductList');
    return [...this.#products.keys()];
  }

  @Cache()
  getProduct(productId: string): Product {
    console.log(`Getting the price of ${productId} from database.`);
    this.dbOperationCount++;
    const product = this.#products.get(productId)!;
    addDependency(product);
    return product;
  }

  @Cache()
  getPriceList(): Map<string, Product> {
    this.dbOperationCount++;
    addDependency(productCatalogueDependency);
    return new Map(this.#products);
  }

  async addProduct(product: Product): Promise<void> {
    console.log(`Adding the product ${product.name}.`);
    this.dbOperationCount++;
    this.#products.set(product.name, product);
    await CachingService.default.invalidate(product, 'ProductList');
  }

  async updateProduct(product: Product): Promise<void> {
    if (!this.#products.has(product.name)) throw new Error(`The product '${product.name}' does not exist.`);
    console.log(`Updating the price of ${product.name}.`);
    this.dbOperationCount++;
    this.#products.set(product.name, product);
    // Cascades to 'ProductCatalogue': getPriceList() is invalidated too, getProduct('wheat') is not.
    await CachingService.default.invalidate(product);
  }
}

function printCatalogue(catalogue: ProductCatalogue): void {
  for (const product of catalogue.getProducts()) console.log(`Price of '${product}' is ${catalogue.getProduct(product)}.`);
}

const catalogue = new ProductCatalogue();

console.log('Read the price catalogue a first time.');
printCatalogue(catalogue);

console.log('Read the price catalogue a second time time. It should be completely performed from cache.');
const operationsBefore = catalogue.dbOperationCount;
printCatalogue(catalogue);
assert.equal(catalogue.dbOperationCount, operationsBefore);

assert.equal(catalogue.getProducts().length, 1);
assert.equal(catalogue.getPriceList().get('corn')?.price, 100);

console.log('Updating the catalogue.');
await catalogue.addProduct(new Product('wheat', 150));
await catalogue.updateProduct(new Product('corn', 110));
assert.equal(catalogue.getProducts().length, 2);
assert.equal(catalogue.getProduct('corn').price, 110);
// The update of corn cascaded to 'ProductCatalogue', so the price list was recomputed.
assert.equal(catalogue.getPriceList().get('corn')?.price, 110);

console.log('Catalogue after changes:');
printCatalogue(catalogue);

await CachingService.default.dispose();
