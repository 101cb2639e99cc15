// The read paths of OrderFlow, cached with @Cache. Each read declares what it depends on (addDependency of the
// records it reads); reads built from other cached reads depend on them automatically, at any depth.
import { addDependency, Cache } from 'aspect-cache';
import type { Database } from './database.js';
import { catalogueDependency, customerOrdersDependency, type Product, type Requester } from './domain.js';

export interface CatalogueEntry {
  readonly id: string;
  readonly name: string;
  readonly priceCents: number;
  readonly featured: boolean;
}

export interface OrderDetailLine {
  readonly productName: string;
  readonly quantity: number;
  readonly unitCents: number;
}

export interface OrderDetail {
  readonly orderId: string;
  readonly status: 'placed' | 'shipped';
  readonly lines: readonly OrderDetailLine[];
  readonly totalCents: number;
  /** Only in a support agent's view. */
  readonly support?: { readonly customer: string; readonly paymentReference: string; readonly internalNote: string };
}

export interface CustomerSummary {
  readonly customerId: string;
  readonly name: string;
  readonly orders: number;
  readonly openOrders: number;
  /** What the open orders will cost, at today's prices (open orders are charged when they ship). */
  readonly openCents: number;
  readonly spentCents: number;
}

export class AccessDeniedError extends Error {}

export class CatalogueQueries {
  constructor(private readonly db: Database) {}

  /** The product list of the shop's front page: invalidated when any product changes (Product cascades to Catalogue). */
  @Cache()
  async getCatalogue(): Promise<CatalogueEntry[]> {
    addDependency(catalogueDependency);
    const products = await this.db.findAllProducts();
    return products.map(({ id, name, priceCents, featured }) => ({ id, name, priceCents, featured }));
  }

  /** One product page: invalidated when this product changes, not when another one does. */
  @Cache()
  async getProduct(productId: string): Promise<Product> {
    const product = await this.db.findProduct(productId);
    addDependency(product);
    return product;
  }
}

export class OrderQueries {
  constructor(
    private readonly db: Database,
    private readonly catalogue: CatalogueQueries,
  ) {}

  /**
   * An order as `requester` sees it. The requester is part of the key: a customer gets their own order, a
   * support agent also the support-only fields, and neither ever gets the other's cached view.
   */
  @Cache()
  async getOrderDetail(orderId: string, requester: Requester): Promise<OrderDetail> {
    const order = await this.db.findOrder(orderId);
    addDependency(order);
    if (requester.kind === 'customer' && order.customerId !== requester.id) {
      throw new AccessDeniedError(`${requester.name} may not see order ${orderId}`); // errors are never cached
    }
    // Nested cached calls: this entry depends on each getProduct(id) entry, hence on each product.
    const lines = await Promise.all(
      order.lines.map(async ({ productId, quantity, chargedUnitCents }) => {
        const product = await this.catalogue.getProduct(productId);
        return { productName: product.name, quantity, unitCents: chargedUnitCents ?? product.priceCents };
      }),
    );
    const totalCents = lines.reduce((sum, line) => sum + line.unitCents * line.quantity, 0);
    const detail = { orderId, status: order.status, lines, totalCents };
    if (requester.kind === 'customer') return detail;
    const customer = await this.db.findCustomer(order.customerId);
    addDependency(customer);
    return { ...detail, support: { customer: `${customer.name} <${customer.email}>`, paymentReference: order.paymentReference, internalNote: order.internalNote } };
  }

  /**
   * A customer's account page, computed from the order details as the customer sees them: cached details are
   * reused, and the summary depends on everything they depend on (orders, products), plus the order list.
   */
  @Cache()
  async getCustomerSummary(customerId: string): Promise<CustomerSummary> {
    const customer = await this.db.findCustomer(customerId);
    addDependency(customer, customerOrdersDependency(customerId));
    const orderIds = await this.db.findOrderIdsOfCustomer(customerId);
    const details = await Promise.all(orderIds.map(orderId => this.getOrderDetail(orderId, customer)));
    const open = details.filter(detail => detail.status === 'placed');
    const sum = (list: OrderDetail[]) => list.reduce((total, detail) => total + detail.totalCents, 0);
    return {
      customerId,
      name: customer.name,
      orders: details.length,
      openOrders: open.length,
      openCents: sum(open),
      spentCents: sum(details.filter(detail => detail.status === 'shipped')),
    };
  }
}
