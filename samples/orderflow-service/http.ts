// The JSON API over node:http: routing, request parsing, status codes. Reads go to the cached queries, writes
// to the commands; /stats reports what this process did (requests, SQL statements, cache counters).
//
//   GET  /categories/:category/products?page=N   a page of 20 products (page 1 by default)
//   GET  /products/:id                           a product
//   GET  /orders/:id                             an order (header X-Requester: admin | customer:<id>)
//   GET  /customers/:id/summary                  a customer's order summary
//   PUT  /products/:id/price      {priceCents}   changes a price
//   POST /orders    {customerId, lines: [{productId, quantity}]}   places an order
//   POST /orders/:id/cancel                      cancels an open order
//   GET  /stats, POST /stats/reset, GET /health
import http from 'node:http';
import type { CacheStats, CachingService } from 'aspect-cache';
import type { ShopCommands, WriteResult } from './commands.js';
import type { Database } from './db.js';
import { AccessDeniedError, AdminRequester, ConflictError, CustomerRequester, NotFoundError, type Requester } from './domain.js';
import type { CatalogueQueries, OrderQueries } from './queries.js';

export interface Shop {
  readonly catalogue: CatalogueQueries;
  readonly orders: OrderQueries;
  readonly commands: ShopCommands;
  readonly db: Database;
  readonly caching: CachingService;
}

/** A request the client got wrong (answered 400). */
class BadRequestError extends Error {}

class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

const ADMIN = new AdminRequester();

/** What GET /stats answers: this process's counters since start or the last POST /stats/reset. */
export interface ProcessStats {
  readonly pid: number;
  /** API requests answered (not /stats or /health). */
  readonly requests: number;
  /** SQL statements sent. */
  readonly sql: number;
  readonly cache: CacheStats;
}

export function createServer(shop: Shop): http.Server {
  let requests = 0;
  let cacheBaseline = shop.caching.stats();
  const stats = (): ProcessStats => {
    const now = shop.caching.stats();
    const cache = Object.fromEntries(Object.entries(now).map(([name, value]) => [name, value - cacheBaseline[name as keyof CacheStats]])) as unknown as CacheStats;
    return { pid: process.pid, requests, sql: shop.db.statements, cache };
  };

  async function route(method: string, url: URL, body: () => Promise<unknown>, header: (name: string) => string | undefined): Promise<Reply> {
    const path = url.pathname;
    let match: RegExpExecArray | null;
    if (method === 'GET' && path === '/health') return new Reply(200, { ok: true });
    if (method === 'GET' && path === '/stats') return new Reply(200, stats());
    if (method === 'POST' && path === '/stats/reset') {
      requests = 0;
      shop.db.statements = 0;
      cacheBaseline = shop.caching.stats();
      return new Reply(200, stats());
    }
    requests++;
    if (method === 'GET' && (match = /^\/categories\/([\w-]+)\/products$/.exec(path))) {
      const page = Number(url.searchParams.get('page') ?? '1');
      if (!(Number.isInteger(page) && page >= 1 && page <= 1_000)) throw new BadRequestError('page must be an integer from 1 to 1000');
      return new Reply(200, await shop.catalogue.getCategoryPage(match[1]!, page));
    }
    if (method === 'GET' && (match = /^\/products\/([\w-]+)$/.exec(path))) {
      const { id, category, name, priceCents, description } = await shop.catalogue.getProduct(match[1]!);
      return new Reply(200, { id, category, name, priceCents, description });
    }
    if (method === 'GET' && (match = /^\/orders\/([\w-]+)$/.exec(path))) {
      return new Reply(200, await shop.orders.getOrderDetail(match[1]!, requesterOf(header('x-requester'))));
    }
    if (method === 'GET' && (match = /^\/customers\/([\w-]+)\/summary$/.exec(path))) {
      return new Reply(200, await shop.orders.getCustomerSummary(match[1]!));
    }
    if (method === 'PUT' && (match = /^\/products\/([\w-]+)\/price$/.exec(path))) {
      const { priceCents } = (await body()) as { priceCents?: unknown };
      if (!(Number.isInteger(priceCents) && (priceCents as number) > 0 && (priceCents as number) < 2 ** 31)) throw new BadRequestError('priceCents must be a positive integer');
      return acknowledge(200, await shop.commands.changePrice(match[1]!, priceCents as number));
    }
    if (method === 'POST' && path === '/orders') {
      const { customerId, lines } = (await body()) as { customerId?: unknown; lines?: unknown };
      if (typeof customerId !== 'string' || !Array.isArray(lines) || !lines.every(l => typeof l?.productId === 'string' && Number.isInteger(l?.quantity))) {
        throw new BadRequestError('expected {customerId, lines: [{productId, quantity}]}');
      }
      return acknowledge(201, await shop.commands.placeOrder(customerId, lines));
    }
    if (method === 'POST' && (match = /^\/orders\/([\w-]+)\/cancel$/.exec(path))) {
      return acknowledge(200, await shop.commands.cancelOrder(match[1]!));
    }
    requests--;
    return new Reply(404, { error: `no route ${method} ${path}` });
  }

  return http.createServer((request, response) => {
    const url = new URL(request.url ?? '/', 'http://localhost');
    const body = () => readJson(request);
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    route(request.method ?? 'GET', url, body, header)
      .catch(errorReply)
      .then(reply => {
        const text = JSON.stringify(reply.body);
        response.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        response.end(text);
      });
  });
}

/**
 * A write's answer. Committed and invalidated: `status`. Committed but an invalidation is still pending (Redis
 * unreachable; it is queued and retried, and this process serves nothing it affects meanwhile): 503, with the
 * written value and `committed: true`. Other processes may serve the previous value until it lands, so the
 * caller must not treat the write as acknowledged — it may read back later, or retry (a price change is
 * idempotent; placing an order again would place a second one, so it checks the customer's orders first).
 */
function acknowledge<T>(status: number, result: WriteResult<T>): Reply {
  if (!result.pending) return new Reply(status, result.value);
  return new Reply(503, { error: 'committed, but the cache invalidation is still pending: other processes may serve the previous value for a moment', committed: true, ...result.value });
}

function requesterOf(header: string | undefined): Requester {
  if (header === 'admin') return ADMIN;
  const match = header === undefined ? null : /^customer:([\w-]+)$/.exec(header);
  if (match) return new CustomerRequester(match[1]!);
  throw new BadRequestError('header X-Requester must be "admin" or "customer:<id>"');
}

function errorReply(error: unknown): Reply {
  if (error instanceof BadRequestError) return new Reply(400, { error: error.message });
  if (error instanceof AccessDeniedError) return new Reply(403, { error: error.message });
  if (error instanceof NotFoundError) return new Reply(404, { error: error.message });
  if (error instanceof ConflictError) return new Reply(409, { error: error.message });
  console.error('orderflow-service: request failed:', error);
  return new Reply(500, { error: 'internal error' });
}

const MAX_BODY_BYTES = 64 * 1024;

function readJson(request: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) reject(new BadRequestError('body too large'));
      else chunks.push(chunk);
    });
    request.on('end', () => {
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || 'null');
        if (parsed === null || typeof parsed !== 'object') reject(new BadRequestError('the body must be a JSON object'));
        else resolve(parsed);
      } catch {
        reject(new BadRequestError('the body is not JSON'));
      }
    });
    request.on('error', reject);
  });
}
