// The read side: every endpoint's data comes from a @Cache method. A method declares the records it read
// (addDependency); a method built from other cached methods depends on them — and on everything they depend
// on — without declaring anything, so a write that invalidates a record reaches every view computed from it.
import { addDependency, Cache } from 'aspect-cache';
import type { Queryable } from './db.js';
import { AccessDeniedError, CustomerRef, customerOrdersDependency, CustomerRequester, NotFoundError, OrderRef, Product, type OrderStatus, type Requester } from './domain.js';
import { PAGE_SIZE } from './schema.js';

export interface CategoryPage {
  readonly category: string;
  readonly page: number;
  readonly products: readonly { readonly id: string; readonly name: string; readonly priceCents: number }[];
  readonly hasMore: boolean;
}

export interface OrderDetailLine {
  readonly productId: string;
  readonly productName: string;
  readonly quantity: number;
  /** Open orders: the product's current price. Shipped: the price charged. Cancelled: null. */
  readonly unitCents: number | null;
}

export interface OrderDetail {
  readonly orderId: string;
  readonly customerId: string;
  readonly status: OrderStatus;
  readonly lines: readonly OrderDetailLine[];
  readonly totalCents: number;
  /** Only in the administrator's view. */
  readonly support?: { readonly customer: string; readonly paymentReference: string; readonly internalNote: string };
}

export interface CustomerSummary {
  readonly customerId: string;
  readonly name: string;
  readonly orderIds: readonly string[];
  readonly openOrders: number;
  /** What the open orders will cost at today's prices (open orders are charged when they ship). */
  readonly openCents: number;
  readonly spentCents: number;
}

interface ProductRow {
  id: string;
  category: string;
  name: string;
  price_cents: number;
  description: string;
}

const productOf = (row: ProductRow) => new Product(row.id, row.category, row.name, row.price_cents, row.description);

export class CatalogueQueries {
  constructor(private readonly db: Queryable) {}

  /** One product page. Invalidated when this product changes, and only then. */
  @Cache()
  async getProduct(productId: string): Promise<Product> {
    const { rows } = await this.db.query<ProductRow>('select * from products where id = $1', [productId]);
    if (!rows[0]) throw new NotFoundError(`no product ${productId}`);
    const product = productOf(rows[0]);
    addDependency(product);
    return product;
  }

  /**
   * A page of a category's product list (by id), one query. The page depends on each product it shows, so a
   * price change invalidates the one page that lists the product, not the whole category.
   */
  @Cache()
  async getCategoryPage(category: string, page: number): Promise<CategoryPage> {
    const { rows } = await this.db.query<ProductRow>('select * from products where category = $1 order by id limit $2 offset $3', [category, PAGE_SIZE + 1, (page - 1) * PAGE_SIZE]);
    const shown = rows.slice(0, PAGE_SIZE).map(productOf);
    addDependency(...shown);
    return { category, page, products: shown.map(({ id, name, priceCents }) => ({ id, name, priceCents })), hasMore: rows.length > PAGE_SIZE };
  }
}

interface OrderRow {
  id: string;
  customer_id: string;
  status: OrderStatus;
  payment_reference: string;
  internal_note: string;
  customer_name: string;
  email: string;
  product_id: string | null;
  product_name: string | null;
  quantity: number | null;
  charged_unit_cents: number | null;
}

export class OrderQueries {
  constructor(
    private readonly db: Queryable,
    private readonly catalogue: CatalogueQueries,
  ) {}

  /**
   * An order as `requester` sees it; the requester is part of the key, so a customer never gets the
   * administrator's cached view. A customer asking for someone else's order gets AccessDeniedError, which is
   * never cached. Open lines are priced through getProduct (a nested cached call: the detail then depends on
   * that product); shipped lines carry the price charged and depend on no product.
   */
  @Cache()
  async getOrderDetail(orderId: string, requester: Requester): Promise<OrderDetail> {
    const { rows } = await this.db.query<OrderRow>(
      `select o.*, c.name as customer_name, c.email, l.product_id, l.product_name, l.quantity, l.charged_unit_cents
         from orders o join customers c on c.id = o.customer_id left join order_lines l on l.order_id = o.id
        where o.id = $1 order by l.line`,
      [orderId],
    );
    const order = rows[0];
    if (!order) throw new NotFoundError(`no order ${orderId}`);
    addDependency(new OrderRef(order.id, order.customer_id));
    if (requester.kind === 'customer' && requester.customerId !== order.customer_id) {
      throw new AccessDeniedError(`order ${orderId} is not an order of ${requester.customerId}`);
    }
    const lines = await Promise.all(
      rows
        .filter(row => row.product_id !== null)
        .map(async (row): Promise<OrderDetailLine> => {
          const base = { productId: row.product_id!, quantity: row.quantity! };
          if (order.status !== 'placed') return { ...base, productName: row.product_name!, unitCents: row.charged_unit_cents };
          const product = await this.catalogue.getProduct(row.product_id!);
          return { ...base, productName: product.name, unitCents: product.priceCents };
        }),
    );
    const totalCents = lines.reduce((sum, line) => sum + (line.unitCents ?? 0) * line.quantity, 0);
    const detail: OrderDetail = { orderId, customerId: order.customer_id, status: order.status, lines, totalCents };
    if (requester.kind === 'customer') return detail;
    addDependency(new CustomerRef(order.customer_id));
    return { ...detail, support: { customer: `${order.customer_name} <${order.email}>`, paymentReference: order.payment_reference, internalNote: order.internal_note } };
  }

  /**
   * A customer's account page, built from the customer's own order details (cached, shared with the order
   * page): it depends on every order and every product they depend on, plus the customer's order list.
   */
  @Cache()
  async getCustomerSummary(customerId: string): Promise<CustomerSummary> {
    const { rows } = await this.db.query<{ name: string; order_ids: string[] }>(
      'select c.name, array(select o.id from orders o where o.customer_id = c.id order by o.id) as order_ids from customers c where c.id = $1',
      [customerId],
    );
    if (!rows[0]) throw new NotFoundError(`no customer ${customerId}`);
    addDependency(new CustomerRef(customerId), customerOrdersDependency(customerId));
    const requester = new CustomerRequester(customerId);
    const details = await Promise.all(rows[0].order_ids.map(orderId => this.getOrderDetail(orderId, requester)));
    const total = (status: OrderStatus) => details.filter(d => d.status === status).reduce((sum, d) => sum + d.totalCents, 0);
    return {
      customerId,
      name: rows[0].name,
      orderIds: rows[0].order_ids,
      openOrders: details.filter(d => d.status === 'placed').length,
      openCents: total('placed'),
      spentCents: total('shipped'),
    };
  }
}
