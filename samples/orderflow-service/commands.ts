// The write side. Each write runs its SQL in one database transaction inside caching.transaction (db.ts) and
// invalidates the records it changed — never cache entries: dependencies recorded by the reads and the
// cascades of the records decide which entries go. A write resolves after COMMIT and after its
// invalidations resolved everywhere they had to go, and reports whether one of them is still pending.
import type { CacheDependency, CachingService } from 'aspect-cache';
import type { Database, Queryable } from './db.js';
import { ConflictError, NotFoundError, OrderRef, Product } from './domain.js';

/** The outcome of a write. `pending`: committed, but an invalidation is queued for retry (see http.ts). */
export interface WriteResult<T> {
  readonly value: T;
  readonly pending: boolean;
}

export interface PriceChange {
  readonly productId: string;
  readonly previousPriceCents: number;
  readonly priceCents: number;
}

export interface NewOrderLine {
  readonly productId: string;
  readonly quantity: number;
}

export class ShopCommands {
  constructor(
    private readonly db: Database,
    private readonly caching: CachingService,
    /** False only in the deliberately broken mode `broken-skip-invalidation`: writes then invalidate nothing. */
    private readonly invalidates = true,
  ) {}

  /**
   * Invalidates `records` inside the running transaction: their entries are removed at once and their keys held
   * until the transaction ends (caching.transaction then invalidates them again).
   */
  async #invalidate(...records: CacheDependency[]): Promise<boolean> {
    if (!this.invalidates) return false;
    const { pending } = await this.caching.invalidate(...records);
    return pending;
  }

  /**
   * A new price. Invalidates the product: its product page, the category page that lists it, the open order
   * details priced from it (every requester's view) and the summaries built from those details.
   */
  async changePrice(productId: string, priceCents: number): Promise<WriteResult<PriceChange>> {
    return this.db.transaction(this.caching, async tx => {
      const { rows } = await tx.query<{ category: string; name: string; price_cents: number; description: string }>('select * from products where id = $1 for update', [productId]);
      const row = rows[0];
      if (!row) throw new NotFoundError(`no product ${productId}`);
      await tx.query('update products set price_cents = $2 where id = $1', [productId, priceCents]);
      const pending = await this.#invalidate(new Product(productId, row.category, row.name, priceCents, row.description));
      return { value: { productId, previousPriceCents: row.price_cents, priceCents }, pending };
    });
  }

  /**
   * A new order. No entry contains it yet; invalidating it cascades to the customer's order list, which
   * removes the customer's summary (and nothing else).
   */
  async placeOrder(customerId: string, lines: readonly NewOrderLine[]): Promise<WriteResult<{ orderId: string }>> {
    if (lines.length === 0 || lines.some(line => !(Number.isInteger(line.quantity) && line.quantity > 0))) throw new ConflictError('an order needs lines with positive quantities');
    return this.db.transaction(this.caching, async tx => {
      const customer = await tx.query('select 1 from customers where id = $1', [customerId]);
      if (customer.rowCount === 0) throw new NotFoundError(`no customer ${customerId}`);
      const { rows } = await tx.query<{ id: string }>(`insert into orders select 'o' || lpad(nextval('order_numbers')::text, 6, '0'), $1, 'placed', 'pay_' || md5(random()::text), '' returning id`, [customerId]);
      const orderId = rows[0]!.id;
      const inserted = await insertLines(tx, orderId, lines);
      if (inserted !== lines.length) throw new NotFoundError('an order line names an unknown product');
      const pending = await this.#invalidate(new OrderRef(orderId, customerId));
      return { value: { orderId }, pending };
    });
  }

  /** Cancels an open order: its details (both views) and, through the cascade, its customer's summary. */
  async cancelOrder(orderId: string): Promise<WriteResult<{ orderId: string; status: 'cancelled' }>> {
    return this.db.transaction(this.caching, async tx => {
      const { rows } = await tx.query<{ customer_id: string; status: string }>('select customer_id, status from orders where id = $1 for update', [orderId]);
      const order = rows[0];
      if (!order) throw new NotFoundError(`no order ${orderId}`);
      if (order.status !== 'placed') throw new ConflictError(`order ${orderId} is ${order.status}: only open orders can be cancelled`);
      await tx.query(`update orders set status = 'cancelled' where id = $1`, [orderId]);
      const pending = await this.#invalidate(new OrderRef(orderId, order.customer_id));
      return { value: { orderId, status: 'cancelled' as const }, pending };
    });
  }
}

/** Inserts the lines with the product names of today (one statement); returns how many were inserted. */
async function insertLines(tx: Queryable, orderId: string, lines: readonly NewOrderLine[]): Promise<number> {
  const result = await tx.query(
    `insert into order_lines (order_id, line, product_id, product_name, quantity, charged_unit_cents)
     select $1, l.n, p.id, p.name, l.quantity, null
       from unnest($2::text[], $3::integer[]) with ordinality as l(product_id, quantity, n) join products p on p.id = l.product_id`,
    [orderId, lines.map(line => line.productId), lines.map(line => line.quantity)],
  );
  return result.rowCount ?? 0;
}
