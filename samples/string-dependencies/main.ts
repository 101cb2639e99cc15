// The ProductCatalogue with string dependencies: each cached read declares the strings it depends on, and
// each write invalidates them. Run: npm run sample:string-dependencies
import assert from 'node:assert/strict';
import { addDependency, Cache, CachingService } from 'aspect-cache';

class ProductCatalogue {
  readonly #prices = new Map<string, number>([['corn', 100]]);
  dbOperationCount = 0;

  @Cache()
  getProducts(): string[] {
    console.log('Getting the product list from database.');
    this.dbOperationCount++;
    addDependency('ProductList');
    return [...this.#prices.keys()];
  }

  @Cache()
  getPrice(productId: string): number {
    console.log(`Getting the price of ${productId} from database.`);
    this.dbOperationCount++;
    addDependency(`ProductPrice:${productId}`);
    return this.#prices.get(productId)!;
  }

  @Cache()
  getPriceList(): Map<string, number> {
    this.dbOperationCount++;
    addDependency('PriceList');
    return new Map(this.#prices);
  }

  async addProduct(productId: string, price: number): Promise<void> {
    console.log(`Adding the product ${productId}.`);
    this.dbOperationCount++;
    this.#prices.set(productId, price);
    await CachingService.default.invalidate('ProductList', 'PriceList');
  }

  async updatePrice(productId: string, price: number): Promise<void> {
    if (!this.#prices.has(productId)) throw new Error(`The product '${productId}' does not exist.`);
    console.log(`Updating the price of ${productId}.`);
    this.dbOperationCount++;
    this.#prices.set(productId, price);
    await CachingService.default.invalidate(`ProductPrice:${productId}`, 'PriceList');
  }
}

function printCatalogue(catalogue: ProductCatalogue): void {
  for (const product of catalogue.getProducts()) console.log(`Price of '${product}' is ${catalogue.getPrice(product)}.`);
}

const catalogue = new ProductCatalogue();

console.log('Read the price catalogue a first time.');
printCatalogue(catalogue);

console.log('Read the price catalogue a second time time. It should be completely performed from cache.');
const operationsBefore = catalogue.dbOperationCount;
printCatalogue(catalogue);
assert.equal(catalogue.dbOperationCount, operationsBefore);

assert.equal(catalogue.getProducts().length, 1);

console.log('Updating the catalogue.');
await catalogue.addProduct('wheat', 150);
await catalogue.updatePrice('corn', 110);
assert.equal(catalogue.getProducts().length, 2);
assert.equal(catalogue.getPrice('corn'), 110);

console.log('Catalogue after changes:');
printCatalogue(catalogue);

await CachingService.default.dispose();
