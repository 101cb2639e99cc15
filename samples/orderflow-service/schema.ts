// The shop's tables and their seed data: about 1,000 products in 20 categories, 200 customers and 5,000 orders
// with their lines, the same on every run (seeded random). Everything lives in one PostgreSQL schema that the
// sample creates, so a test or a benchmark can use a schema of its own and drop it afterwards.
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { between, seededRandom, zipfSampler } from './random.js';

export const SEED = { categories: 20, products: 1_000, customers: 200, orders: 5_000 } as const;

/** Products per category page. */
export const PAGE_SIZE = 20;

const TABLES = `
  create table categories (id text primary key, name text not null);
  create table products (
    id text primary key, category text not null references categories, name text not null,
    price_cents integer not null, description text not null
  );
  create index products_by_category on products (category, id);
  create table customers (id text primary key, name text not null, email text not null);
  create sequence order_numbers;
  create table orders (
    id text primary key, customer_id text not null references customers,
    status text not null check (status in ('placed', 'shipped', 'cancelled')),
    payment_reference text not null, internal_note text not null
  );
  create index orders_by_customer on orders (customer_id, id);
  create table order_lines (
    order_id text not null references orders, line integer not null, product_id text not null references products,
    product_name text not null, quantity integer not null,
    -- The price charged when the order shipped; null while it is open (open orders follow the current price).
    charged_unit_cents integer,
    primary key (order_id, line)
  );
  -- Identifies this seeding: the cache key prefix includes it, so entries cached before a reset are never read.
  create table seeding (id text not null);
`;

const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Heavy-duty', 'Mini', 'Pro', 'Smart', 'Travel', 'Vintage'];
const NOUNS = ['kettle', 'grinder', 'mug', 'lamp', 'backpack', 'blender', 'chair', 'headset', 'jacket', 'toaster', 'tent', 'watch'];

/** Drops `schema` if it exists and creates it with the seed data. */
export async function resetSchema(databaseUrl: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.query(`create schema ${schema}`);
    await client.query(`set search_path = ${schema}`);
    await client.query('begin');
    await client.query(TABLES);
    await seed(client);
    await client.query('commit');
  } finally {
    await client.end();
  }
}

/** Creates and seeds `schema` unless it is already there (a previous run's data is kept). */
export async function ensureSchema(databaseUrl: string, schema: string): Promise<'created' | 'kept'> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let exists: boolean;
  try {
    const { rows } = await client.query<{ found: boolean }>(`select to_regclass($1) is not null as found`, [`${schema}.seeding`]);
    exists = rows[0]!.found;
  } finally {
    await client.end();
  }
  if (exists) return 'kept';
  await resetSchema(databaseUrl, schema);
  return 'created';
}

/** The id of the current seeding (the cache key prefix includes it). */
export async function seedingId(query: (text: string) => Promise<pg.QueryResult<{ id: string }>>): Promise<string> {
  const { rows } = await query('select id from seeding');
  if (rows.length !== 1) throw new Error('the schema has no seeding id: run the service with --reset');
  return rows[0]!.id;
}

/** Inserts the seed rows: one statement per table (unnest of arrays). */
async function seed(client: pg.Client): Promise<void> {
  const random = seededRandom(20_260_101);
  const categories = Array.from({ length: SEED.categories }, (_, i) => `c${String(i + 1).padStart(2, '0')}`);
  await client.query('insert into categories select * from unnest($1::text[], $2::text[])', [categories, categories.map((_, i) => `Category ${i + 1}`)]);

  const products = Array.from({ length: SEED.products }, (_, i) => {
    const name = `${ADJECTIVES[between(random, 0, ADJECTIVES.length - 1)]} ${NOUNS[between(random, 0, NOUNS.length - 1)]} ${i + 1}`;
    return { id: `p${String(i + 1).padStart(4, '0')}`, category: categories[between(random, 0, categories.length - 1)]!, name, price: between(random, 199, 19_999) };
  });
  await client.query('insert into products select * from unnest($1::text[], $2::text[], $3::text[], $4::integer[], $5::text[])', [
    products.map(p => p.id),
    products.map(p => p.category),
    products.map(p => p.name),
    products.map(p => p.price),
    products.map(p => `The ${p.name.toLowerCase()}, as sold since 2026.`),
  ]);

  const customers = Array.from({ length: SEED.customers }, (_, i) => `u${String(i + 1).padStart(3, '0')}`);
  await client.query('insert into customers select * from unnest($1::text[], $2::text[], $3::text[])', [customers, customers.map((_, i) => `Customer ${i + 1}`), customers.map(id => `${id}@example.com`)]);

  // Popular products are ordered more often (Zipf over a shuffled order, so popularity is not the id order).
  const popularity = [...products.keys()];
  for (let i = popularity.length - 1; i > 0; i--) {
    const j = between(random, 0, i);
    [popularity[i], popularity[j]] = [popularity[j]!, popularity[i]!];
  }
  const pickProduct = zipfSampler(products.length, 0.8, random);
  const orders: { id: string; customer: string; status: string; payment: string; note: string }[] = [];
  const lines: { order: string; line: number; product: string; name: string; quantity: number; charged: number | null }[] = [];
  for (let i = 0; i < SEED.orders; i++) {
    const id = `o${String(i + 1).padStart(6, '0')}`;
    const roll = random();
    const status = roll < 0.2 ? 'placed' : roll < 0.95 ? 'shipped' : 'cancelled';
    orders.push({ id, customer: customers[between(random, 0, customers.length - 1)]!, status, payment: `pay_${(i * 7919).toString(36)}`, note: roll < 0.1 ? 'Gift wrap requested.' : '' });
    const count = between(random, 1, 4);
    const used = new Set<string>();
    for (let line = 1; line <= count; line++) {
      const product = products[popularity[pickProduct()]!]!;
      if (used.has(product.id)) continue; // one line per product
      used.add(product.id);
      lines.push({ order: id, line, product: product.id, name: product.name, quantity: between(random, 1, 3), charged: status === 'shipped' ? product.price : null });
    }
  }
  await client.query('insert into orders select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])', [
    orders.map(o => o.id),
    orders.map(o => o.customer),
    orders.map(o => o.status),
    orders.map(o => o.payment),
    orders.map(o => o.note),
  ]);
  await client.query('insert into order_lines select * from unnest($1::text[], $2::integer[], $3::text[], $4::text[], $5::integer[], $6::integer[])', [
    lines.map(l => l.order),
    lines.map(l => l.line),
    lines.map(l => l.product),
    lines.map(l => l.name),
    lines.map(l => l.quantity),
    lines.map(l => l.charged),
  ]);
  await client.query(`select setval('order_numbers', $1)`, [SEED.orders]);
  await client.query('insert into seeding values ($1)', [randomUUID()]);
}
