// The write side of OrderFlow. Most writes publish a domain event and leave cache invalidation to the event
// handlers (invalidation.ts); updateDescription shows the other way, @InvalidateCache on the write method.
import { InvalidateCache } from 'aspect-cache';
import type { Database } from './database.js';
import { Order, type OrderLine } from './domain.js';
import type { EventBus } from './events.js';
import { CatalogueQueries } from './queries.js';

export class ShopCommands {
  constructor(
    private readonly db: Database,
    private readonly bus: EventBus,
  ) {}

  async changePrice(productId: string, priceCents: number): Promise<void> {
    const previous = this.db.productForUpdate(productId);
    const product = previous.withPrice(priceCents);
    this.db.saveProduct(product);
    await this.bus.publish({ type: 'ProductPriceChanged', product, previousPriceCents: previous.priceCents });
  }

  async shipOrder(orderId: string): Promise<void> {
    // Open orders are charged at the current price when they ship.
    const order = this.db.orderForUpdate(orderId).shipped(productId => this.db.productForUpdate(productId).priceCents);
    this.db.saveOrder(order);
    await this.bus.publish({ type: 'OrderShipped', order });
  }

  async placeOrder(orderId: string, customerId: string, lines: OrderLine[]): Promise<Order> {
    const order = new Order(orderId, customerId, lines, 'placed', `pay_${orderId.slice(2)}`, '');
    this.db.saveOrder(order);
    await this.bus.publish({ type: 'OrderPlaced', order });
    return order;
  }

  /**
   * The description is only on the product page (not in the catalogue), so only getProduct(productId) — and
   * whatever was computed from it — is invalidated, after the write succeeds. `productId` maps to
   * getProduct's parameter of the same name.
   */
  @InvalidateCache([CatalogueQueries, 'getProduct'])
  async updateDescription(productId: string, description: string): Promise<void> {
    this.db.saveProduct(this.db.productForUpdate(productId).withDescription(description));
  }
}
