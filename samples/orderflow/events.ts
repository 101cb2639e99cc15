// Domain events and a tiny in-process event bus. The write side publishes what happened; the cache
// invalidation handlers (invalidation.ts) subscribe to it, so the write side knows nothing about caching.
import type { Order, Product } from './domain.js';

export type DomainEvent =
  | { readonly type: 'ProductPriceChanged'; readonly product: Product; readonly previousPriceCents: number }
  | { readonly type: 'OrderPlaced'; readonly order: Order }
  | { readonly type: 'OrderShipped'; readonly order: Order };

export type DomainEventType = DomainEvent['type'];
export type EventOf<T extends DomainEventType> = Extract<DomainEvent, { readonly type: T }>;
type Handler<T extends DomainEventType> = (event: EventOf<T>) => void | Promise<void>;

export class EventBus {
  readonly #handlers = new Map<DomainEventType, Handler<any>[]>();

  subscribe<T extends DomainEventType>(type: T, handler: Handler<T>): void {
    const handlers = this.#handlers.get(type) ?? [];
    handlers.push(handler);
    this.#handlers.set(type, handlers);
  }

  /** Runs the handlers one after the other; resolves when all are done (so a read after it sees their effect). */
  async publish(event: DomainEvent): Promise<void> {
    for (const handler of this.#handlers.get(event.type) ?? []) await handler(event);
  }
}
