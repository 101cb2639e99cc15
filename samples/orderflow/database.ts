// A stand-in for the shop's database: in-memory tables that count every read, so the sample can show which
// requests reached the database and which were served from the cache. Records are immutable; a write
// replaces the record, so a value already handed out (and possibly cached) never changes under its holder.
import { Customer, Order, Product, type OrderLine } from './domain.js';

export class Database {
  /** Number of queries answered so far (each read method is one query). */
  reads = 0;

  readonly #products = new Map<string, Product>();
  readonly #orders = new Map<string, Order>();
  readonly #customers = new Map<string, Customer>();

  constructor() {
    for (const product of [
      new Product('espresso', 'Espresso beans 1 kg', 2400, 'Dark roast, chocolate notes.', true),
      new Product('filter', 'Filter coffee 1 kg', 1950, 'Light roast, citrus notes.', true),
      new Product('grinder', 'Burr grinder', 9900, 'Conical burrs, 40 settings.', true),
      new Product('kettle', 'Gooseneck kettle', 4500, 'Stovetop, 1 litre.', false),
      new Product('mug', 'Stoneware mug', 1200, 'Hand-glazed, 300 ml.', false),
    ]) {
      this.#products.set(product.id, product);
    }
    for (const customer of [new Customer('alice', 'Alice', 'alice@example.com'), new Customer('bob', 'Bob', 'bob@example.com')]) {
      this.#customers.set(customer.id, customer);
    }
    const line = (productId: string, quantity: number, chargedUnitCents?: number): OrderLine => ({ productId, quantity, ...(chargedUnitCents !== undefined ? { chargedUnitCents } : {}) });
    for (const order of [
      new Order('o-1001', 'alice', [line('espresso', 2, 2400), line('mug', 1, 1200)], 'shipped', 'pay_7Q2A', 'Left with the neighbour.'),
      new Order('o-1002', 'alice', [line('grinder', 1), line('filter', 1)], 'placed', 'pay_9X4K', 'Gift wrap requested.'),
      new Order('o-1003', 'bob', [line('espresso', 1), line('kettle', 1)], 'placed', 'pay_3M8D', ''),
    ]) {
      this.#orders.set(order.id, order);
    }
  }

  // ── reads (counted) ──

  async findAllProducts(): Promise<Product[]> {
    this.reads++;
    return [...this.#products.values()];
  }

  async findProduct(id: string): Promise<Product> {
    this.reads++;
    return this.#products.get(id) ?? fail(`no product ${id}`);
  }

  async findOrder(id: string): Promise<Order> {
    this.reads++;
    return this.#orders.get(id) ?? fail(`no order ${id}`);
  }

  async findOrderIdsOfCustomer(customerId: string): Promise<string[]> {
    this.reads++;
    return [...this.#orders.values()].filter(order => order.customerId === customerId).map(order => order.id);
  }

  async findCustomer(id: string): Promise<Customer> {
    this.reads++;
    return this.#customers.get(id) ?? fail(`no customer ${id}`);
  }

  // ── writes (used by the commands; not counted) ──

  /** The current record, for the write side (not a counted read). */
  productForUpdate(id: string): Product {
    return this.#products.get(id) ?? fail(`no product ${id}`);
  }

  orderForUpdate(id: string): Order {
    return this.#orders.get(id) ?? fail(`no order ${id}`);
  }

  saveProduct(product: Product): void {
    this.#products.set(product.id, product);
  }

  saveOrder(order: Order): void {
    this.#orders.set(order.id, order);
  }
}

function fail(message: string): never {
  throw new Error(message);
}
