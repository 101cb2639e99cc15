// A multi-tenant catalogue with vary-by contexts: prices vary by tenant (varyBy: ['tenant']), the admin view
// varies by role (readContext('user.roles') inside), and the product page built from both declares nothing,
// yet varies by tenant and roles because its children do. The request (tenant, user, roles) lives in the
// application's own AsyncLocalStorage; the caching service reads it through its context providers.
// Run: npm run sample:multi-tenant
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { addDependency, Cache, CachingService, readContext } from 'aspect-cache';

type Tenant = 'acme' | 'globex';
type Product = 'corn' | 'wheat';

interface RequestState {
  readonly tenant: Tenant;
  readonly user: string;
  readonly roles: readonly string[];
}

/** The application's request state, as a web framework's middleware would set it for each request. */
const requests = new AsyncLocalStorage<RequestState>();

const caching = new CachingService({
  contexts: {
    tenant: () => requests.getStore()?.tenant,
    'user.roles': () => requests.getStore()?.roles,
  },
});
CachingService.default = caching;

/** Each tenant's prices and costs, in cents. */
const database: Record<Tenant, { currency: string; prices: Record<Product, number>; costs: Record<Product, number> }> = {
  acme: { currency: 'EUR', prices: { corn: 210, wheat: 180 }, costs: { corn: 140, wheat: 150 } },
  globex: { currency: 'USD', prices: { corn: 195, wheat: 205 }, costs: { corn: 120, wheat: 170 } },
};
const money = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency}`;

class Catalogue {
  /** How many times each method body ran (the others were served from cache). */
  readonly executions = { getProductPage: 0, getPrice: 0, getAdminView: 0 };

  /** The tenant's price. Declared to vary by tenant, so it may read the tenant from the request itself. */
  @Cache({ varyBy: ['tenant'] })
  async getPrice(product: Product): Promise<string> {
    this.executions.getPrice++;
    const { tenant } = requests.getStore()!;
    addDependency(`Price:${tenant}:${product}`);
    return money(database[tenant].prices[product], database[tenant].currency);
  }

  /** Cost and margin, for admins only. Reads the roles; only for admins the tenant too. */
  @Cache()
  async getAdminView(product: Product): Promise<string | null> {
    this.executions.getAdminView++;
    const roles = readContext('user.roles') as readonly string[];
    if (!roles.includes('admin')) return null; // the same for every tenant: one entry per role set
    const tenant = readContext('tenant') as Tenant;
    addDependency(`Price:${tenant}:${product}`, `Cost:${tenant}:${product}`);
    const { prices, costs, currency } = database[tenant];
    return `cost ${money(costs[product], currency)}, margin ${Math.round((100 * (prices[product] - costs[product])) / prices[product])}%`;
  }

  /** The product page: no varyBy here; it varies by whatever its children read. */
  @Cache()
  async getProductPage(product: Product): Promise<string> {
    this.executions.getProductPage++;
    const [price, admin] = await Promise.all([this.getPrice(product), this.getAdminView(product)]);
    return `${product} ${price}${admin === null ? '' : ` (${admin})`}`;
  }
}

const users: Record<string, RequestState> = {
  alice: { tenant: 'acme', user: 'alice', roles: ['admin'] },
  bob: { tenant: 'acme', user: 'bob', roles: ['staff'] },
  carol: { tenant: 'acme', user: 'carol', roles: ['staff'] },
  dave: { tenant: 'globex', user: 'dave', roles: ['staff'] },
  erin: { tenant: 'globex', user: 'erin', roles: ['admin'] },
};

const catalogue = new Catalogue();
let views = 0;

/** What ran since `before`, in words. */
function ran(before: Catalogue['executions']): string {
  const names = (Object.keys(before) as Array<keyof Catalogue['executions']>).filter(name => catalogue.executions[name] > before[name]);
  return names.length === 0 ? 'served from cache' : `ran ${names.join(', ')}`;
}

/** Every page a user sees shows their tenant's currency, and cost data only if they are an admin. */
function checkOwnData(state: RequestState, page: string): void {
  const own = database[state.tenant].currency;
  const other = database[state.tenant === 'acme' ? 'globex' : 'acme'].currency;
  assert.ok(page.includes(own) && !page.includes(other), `${state.user} of ${state.tenant} saw "${page}"`);
  assert.equal(page.includes('cost'), state.roles.includes('admin'), `${state.user} (${state.roles.join(', ')}) saw "${page}"`);
}

async function visit(user: string, product: Product): Promise<string> {
  const state = users[user]!;
  const before = { ...catalogue.executions };
  const page = await requests.run(state, () => catalogue.getProductPage(product));
  views++;
  checkOwnData(state, page);
  console.log(`  ${`${user} (${state.tenant}, ${state.roles.join(', ')})`.padEnd(22)} "${page}"`.padEnd(68) + ` ${ran(before)}`);
  return ran(before);
}

console.log('Five users of two tenants open the corn page:');
assert.equal(await visit('alice', 'corn'), 'ran getProductPage, getPrice, getAdminView');
assert.equal(await visit('bob', 'corn'), 'ran getProductPage, getAdminView'); // acme's price is shared
assert.equal(await visit('carol', 'corn'), 'served from cache'); // same tenant and roles as bob
assert.equal(await visit('dave', 'corn'), 'ran getProductPage, getPrice'); // the staff view reads no tenant: shared
assert.equal(await visit('erin', 'corn'), 'ran getProductPage, getAdminView'); // globex's price is shared
console.log();

console.log('An acme admin and a globex user open the wheat page at the same moment:');
{
  const before = { ...catalogue.executions };
  const [acme, globex] = await Promise.all([requests.run(users.alice!, () => catalogue.getProductPage('wheat')), requests.run(users.dave!, () => catalogue.getProductPage('wheat'))]);
  views += 2;
  checkOwnData(users.alice!, acme);
  checkOwnData(users.dave!, globex);
  console.log(`  alice sees "${acme}", dave sees "${globex}": neither joined the other's computation.`);
  assert.equal(catalogue.executions.getProductPage - before.getProductPage, 2);
}
console.log();

console.log('acme changes the price of corn, then everyone reopens the corn page:');
database.acme.prices.corn = 230;
await caching.invalidate('Price:acme:corn');
assert.equal(await visit('alice', 'corn'), 'ran getProductPage, getPrice, getAdminView'); // the admin view reads the price too
// acme's staff page was removed as well. The staff view did not depend on the price, but runs again: the
// call's variant record names what its latest computation read (alice's: roles and tenant).
assert.equal(await visit('bob', 'corn'), 'ran getProductPage, getAdminView');
assert.equal(await visit('carol', 'corn'), 'served from cache');
assert.equal(await visit('dave', 'corn'), 'served from cache'); // globex's variants did not depend on acme's price
assert.equal(await visit('erin', 'corn'), 'served from cache');
console.log();

const { getProductPage, getPrice, getAdminView } = catalogue.executions;
console.log(`Method executions for ${views} page views: getProductPage ${getProductPage}, getPrice ${getPrice}, getAdminView ${getAdminView}.`);
console.log("No user saw another tenant's prices, and only admins saw costs.");

await caching.dispose();
