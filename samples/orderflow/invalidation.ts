// Cache invalidation driven by domain events: each handler invalidates the record that changed. Cascades and
// the dependencies recorded by nested cached calls do the rest — the handlers never list cache entries.
import type { CachingService } from 'aspect-cache';
import type { EventBus } from './events.js';

export function invalidateOnDomainEvents(bus: EventBus, caching: CachingService): void {
  // getProduct(id), every order detail and summary computed from it, and (cascade) the catalogue.
  bus.subscribe('ProductPriceChanged', async ({ product }) => {
    await caching.invalidate(product);
  });
  // The order's details (every requester's view) and (cascade) what was computed from the customer's orders.
  bus.subscribe('OrderShipped', async ({ order }) => {
    await caching.invalidate(order);
  });
  // A new order is in no entry yet: its cascade to the customer's order list invalidates the summary.
  bus.subscribe('OrderPlaced', async ({ order }) => {
    await caching.invalidate(order);
  });
}
