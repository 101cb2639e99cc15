// The OrderFlow records. Each record is its own cache dependency (CacheDependency): a cached read that uses a
// record calls addDependency(record), and a write invalidates the record it changed. Cascades link a record to
// the collections it belongs to, so a write never has to know which cache entries exist.
import { StringDependency, type CacheDependency } from 'aspect-cache';

/** The list of a customer's orders: changes when the customer places an order or one of them changes. */
export function customerOrdersDependency(customerId: string): StringDependency {
  return new StringDependency(`Customer:${customerId}/orders`);
}

/** A product. Its category pages, product page and the open orders priced from it depend on it. */
export class Product implements CacheDependency {
  constructor(
    readonly id: string,
    readonly category: string,
    readonly name: string,
    readonly priceCents: number,
    readonly description: string,
  ) {}

  getCacheKey(): string {
    return `Product:${this.id}`;
  }
}

export type OrderStatus = 'placed' | 'shipped' | 'cancelled';

/** The identity of an order, as a dependency: enough to invalidate it (no need to load the whole record). */
export class OrderRef implements CacheDependency {
  constructor(
    readonly id: string,
    readonly customerId: string,
  ) {}

  getCacheKey(): string {
    return `Order:${this.id}`;
  }

  /** `invalidate(order)` also invalidates what was computed from its customer's order list (the summary). */
  get cascadeDependencies(): CacheDependency[] {
    return [customerOrdersDependency(this.customerId)];
  }
}

/** A customer record. */
export class CustomerRef implements CacheDependency {
  constructor(readonly id: string) {}

  getCacheKey(): string {
    return `Customer:${this.id}`;
  }
}

/**
 * Who asks for an order: part of the order detail's cache key (an argument of `getOrderDetail`), since an
 * administrator sees support-only fields and a customer sees only their own orders.
 */
export type Requester = CustomerRequester | AdminRequester;

/** A signed-in customer. As an argument it contributes `CustomerRequester("Customer:c001")` to a key. */
export class CustomerRequester {
  readonly kind = 'customer';
  constructor(readonly customerId: string) {}
  getCacheKey(): string {
    return `Customer:${this.customerId}`;
  }
}

/** A back-office user: every order, with the support-only fields. One view for all administrators. */
export class AdminRequester {
  readonly kind = 'admin';
  getCacheKey(): string {
    return 'Admin';
  }
}

/** Thrown by the read side when the requester may not see a record (answered 403, never cached). */
export class AccessDeniedError extends Error {}

/** Thrown when a record does not exist (answered 404, never cached). */
export class NotFoundError extends Error {}

/** Thrown when a write conflicts with the record's state (answered 409), e.g. cancelling a shipped order. */
export class ConflictError extends Error {}
