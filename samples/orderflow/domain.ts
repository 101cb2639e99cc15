// The OrderFlow domain. Each record is its own cache dependency (CacheDependency): a cached read that uses a
// record calls addDependency(record), and the event handlers invalidate the record when it changes.
import { StringDependency, type CacheDependency } from 'aspect-cache';

/** Everything computed from the catalogue as a whole (the product list) depends on this. */
export const catalogueDependency = new StringDependency('Catalogue');

/** The list of a customer's orders: what changes when the customer places an order. */
export function customerOrdersDependency(customerId: string): StringDependency {
  return new StringDependency(`Customer:${customerId}/orders`);
}

/** A product record. Changing it also changes the catalogue, hence the cascade. */
export class Product implements CacheDependency {
  constructor(
    readonly id: string,
    readonly name: string,
    readonly priceCents: number,
    readonly description: string,
    /** Featured products are on the home page: the cache is warmed with them at start-up. */
    readonly featured: boolean,
  ) {}

  getCacheKey(): string {
    return `Product:${this.id}`;
  }

  /** `invalidate(product)` also invalidates everything that depends on the catalogue. */
  get cascadeDependencies(): CacheDependency[] {
    return [catalogueDependency];
  }

  withPrice(priceCents: number): Product {
    return new Product(this.id, this.name, priceCents, this.description, this.featured);
  }

  withDescription(description: string): Product {
    return new Product(this.id, this.name, this.priceCents, description, this.featured);
  }
}

export interface OrderLine {
  readonly productId: string;
  readonly quantity: number;
  /** Fixed when the order ships; until then the line is priced at the product's current price. */
  readonly chargedUnitCents?: number;
}

export type OrderStatus = 'placed' | 'shipped';

/** An order record. Changing it changes its customer's order list, hence the cascade. */
export class Order implements CacheDependency {
  constructor(
    readonly id: string,
    readonly customerId: string,
    readonly lines: readonly OrderLine[],
    readonly status: OrderStatus,
    /** Support-only fields. */
    readonly paymentReference: string,
    readonly internalNote: string,
  ) {}

  getCacheKey(): string {
    return `Order:${this.id}`;
  }

  /** `invalidate(order)` also invalidates what was computed from the customer's order list. */
  get cascadeDependencies(): CacheDependency[] {
    return [customerOrdersDependency(this.customerId)];
  }

  shipped(chargedUnitCents: (productId: string) => number): Order {
    const lines = this.lines.map(line => ({ ...line, chargedUnitCents: chargedUnitCents(line.productId) }));
    return new Order(this.id, this.customerId, lines, 'shipped', this.paymentReference, this.internalNote);
  }
}

/** A customer: a record (and dependency) and, when signed in, a requester. */
export class Customer implements CacheDependency {
  readonly kind = 'customer';

  constructor(
    readonly id: string,
    readonly name: string,
    readonly email: string,
  ) {}

  /** Also what a Customer argument contributes to a method's cache key: `Customer("Customer:alice")`. */
  getCacheKey(): string {
    return `Customer:${this.id}`;
  }
}

/** A support agent: sees every order, with the support-only fields. */
export class SupportAgent {
  readonly kind = 'support';

  constructor(
    readonly id: string,
    readonly name: string,
  ) {}

  /** A SupportAgent argument contributes `SupportAgent("Agent:sam")` to a method's cache key. */
  getCacheKey(): string {
    return `Agent:${this.id}`;
  }
}

/** Who asks for an order: part of the order detail's cache key, since each requester sees something else. */
export type Requester = Customer | SupportAgent;

export function formatMoney(cents: number): string {
  return `€${(cents / 100).toFixed(2)}`;
}
