// A randomized, model-based leak checker for vary-by contexts (SPEC §11, with §4 and §6).
//
// A multi-tenant shop: per-tenant rows (prices, admin-only costs, label overrides), global promo flags and
// per-user preferences, all versioned. A DAG of cached methods reads them under the request of the caller,
// which the application keeps in its own AsyncLocalStorage (`RequestScope`) and the service reads through its
// `contexts` providers:
//
//   price(i)     varyBy ['tenant']                     reads price:<tenant>:<i> (the tenant from the request)
//   cost(i)      no varyBy; readContext('user.roles'); admins only: readContext('tenant'), reads cost:<tenant>:<i>
//   label(i)     no varyBy; reads promo:<i>; only when its version is odd: readContext('tenant'), label:<tenant>:<i>
//   badge(i)     no varyBy, synchronous where the backend is (MemoryBackend): readContext('user.roles'); staff
//                only: readContext('tenant'), reads badge:<tenant>:<i> synchronously
//   teaser(i)    no varyBy: label(i), or, when it fails, a placeholder carrying the failure (stored)
//   card(i)      no varyBy: Promise.all of price(i), cost(i), label(i), badge(i)
//   page(i)      no varyBy: card(i), then card(i+1) through a plain async function; a failure of the second
//                card is caught and stored in the page as a placeholder carrying its error (which names the row)
//   profile(i)   varyBy ['user'] (more specific than the 'user.roles' its child cost(i) reads): pref:<user>,
//                cost(i), price(i)
//   listing()    varyBy ['query:page']: price(page), price(page+1), so it varies by tenant through them
//   home(i)      no varyBy: Promise.all of page(i), profile(i), listing()
//
// Every value records, at every node, the request values its own computation read (`seen`) and the rows it
// read with their versions. A seeded driver runs random calls under random requests (tenant, user with that
// user's roles, a page; a few requests have no query string), bursts of one call under several requests at
// once (concurrent first calls: single-flight must join only callers whose context values agree), data reads
// held open and released in random order, failing reads, random writes followed by `invalidate` of the row or
// `invalidateCall` of the method reading it (inside or outside a request), and random yields. Each returned
// value is checked at every nesting level against the caller's request:
//
//   tenant   no node holds a row of, or was computed for, a tenant other than the caller's; no call fails with,
//            and no placeholder carries, the failure of another tenant's read (the same for user and role)
//   user     no node holds another user's preferences or was computed for another user
//   role     no node holds admin-only data for a caller who is not an admin, or a view computed for other roles
//   query    no node was computed for another page; a call needing the page under a request without a query
//            string fails with a CachingError E_CONTEXT naming the context (never served from another request)
//   shape    each node is the value of the call it is returned for, with the parts and rows that call reads
//   ryw      a call that starts after a write's invalidation resolved sees that version or a newer one
//   sweep    at quiet points (everything settled), every call under every request returns current data
//   error    no call fails other than by a data-source failure or an expected E_CONTEXT
//   hang     every call settles
//
// Imports are relative (not 'aspect-cache') so that the same file serves the Redis integration tests.
import { AsyncLocalStorage } from 'node:async_hooks';
import { addDependency, bindCachingService, Cache, CachingError, CachingService, readContext } from '../../src/index.js';
import type { CachingBackend } from '../../src/backends/backend.js';
import type { CacheOptions } from '../../src/service/options.js';
import { Rng } from './consistency-model.js';

export { Rng } from './consistency-model.js';

// ---------------------------------------------------------------------------------------------------------------
// The application's request state

export const TENANTS = ['acme', 'globex', 'initech'] as const;
/** Users and their roles (a user's roles are fixed: `user` is more specific than `user.roles`). */
export const USERS: Readonly<Record<string, readonly string[]>> = {
  alice: ['admin'],
  bob: ['staff'],
  carol: ['staff'],
  dave: [],
  erin: ['admin', 'staff'],
};
export const USER_NAMES = Object.keys(USERS);
export const ITEMS = 4;
export const PAGES = 3;

/** One request: who is asking, for which tenant, with which query string (absent: none). */
export interface Request {
  readonly tenant: string;
  readonly user: string;
  readonly roles: readonly string[];
  readonly query?: { readonly page: number };
}

/** The application's own AsyncLocalStorage of the current request, which the context providers read. */
export class RequestScope {
  readonly #als = new AsyncLocalStorage<Request>();
  run<T>(request: Request, fn: () => T): T {
    return this.#als.run(request, fn);
  }
  current(): Request | undefined {
    return this.#als.getStore();
  }
  /** The current request; a model method runs only inside one. */
  required(): Request {
    const request = this.#als.getStore();
    if (request === undefined) throw new Error('model: no request in scope');
    return request;
  }
}

/** The providers of a correct wiring: each reads the request from the application's AsyncLocalStorage. */
export function requestContexts(scope: RequestScope): Record<string, (param?: string) => unknown> {
  return {
    tenant: () => scope.current()?.tenant,
    user: () => scope.current()?.user,
    'user.roles': () => scope.current()?.roles,
    query: (param?: string) => {
      const query = scope.current()?.query;
      if (query === undefined) throw new Error('the request has no query string');
      return query[param as keyof typeof query];
    },
  };
}

/** A request of `user` (with that user's roles) for `tenant`; `page` null: a request without a query string. */
export function request(tenant: string, user: string, page: number | null = 0): Request {
  return { tenant, user, roles: USERS[user]!, ...(page === null ? {} : { query: { page } }) };
}

export const rolesKey = (roles: readonly string[]): string => (roles.length === 0 ? '(none)' : roles.join('+'));
const isAdmin = (r: Request) => r.roles.includes('admin');
const describe = (r: Request) => `[${r.tenant}/${r.user}(${rolesKey(r.roles)})${r.query ? ` page ${r.query.page}` : ' no query'}]`;

// ---------------------------------------------------------------------------------------------------------------
// Values

export type VaryMethod = 'price' | 'cost' | 'label' | 'badge' | 'teaser' | 'card' | 'page' | 'profile' | 'listing' | 'home';
export const VARY_METHODS: readonly VaryMethod[] = ['price', 'cost', 'label', 'badge', 'teaser', 'card', 'page', 'profile', 'listing', 'home'];
/** The methods whose value depends on the page of the query string (directly or below). */
const NEEDS_QUERY: ReadonlySet<VaryMethod> = new Set(['listing', 'home']);

/** The request values a computation read itself (declared varyBy, readContext, or the request it ran for). */
export interface Seen {
  readonly tenant?: string;
  readonly user?: string;
  /** rolesKey of the roles read. */
  readonly roles?: string;
  readonly page?: number;
}

export interface RowRead {
  readonly id: string;
  readonly v: number;
}

export interface VaryNode {
  /** Unique per computation. */
  readonly id: string;
  readonly m: VaryMethod;
  readonly args: readonly number[];
  readonly seen: Seen;
  readonly rows: readonly RowRead[];
  readonly parts: readonly VaryNode[];
  /** A placeholder for a failed call (page's second card): the error message, which names the row. */
  readonly failure?: string;
}

const item = (i: number) => ((i % ITEMS) + ITEMS) % ITEMS;

/** Every row of the data source. */
export function allRows(): string[] {
  const rows: string[] = [];
  for (const t of TENANTS) for (let i = 0; i < ITEMS; i++) rows.push(`price:${t}:${i}`, `cost:${t}:${i}`, `label:${t}:${i}`, `badge:${t}:${i}`);
  for (let i = 0; i < ITEMS; i++) rows.push(`promo:${i}`);
  for (const u of USER_NAMES) rows.push(`pref:${u}`);
  return rows;
}

/** Whose data a row is. */
function ownerOf(row: string): { tenant?: string; user?: string; adminOnly: boolean } {
  const [kind, a] = row.split(':');
  if (kind === 'pref') return { user: a!, adminOnly: false };
  if (kind === 'promo') return { adminOnly: false };
  return { tenant: a!, adminOnly: kind === 'cost' };
}

/** What a call reads and calls under a request (label's branch depends on the promo version it read). */
function expectedOf(m: VaryMethod, args: readonly number[], r: Request, node: VaryNode): { seen: Seen; rows: string[]; parts: Array<[VaryMethod, number[]]> } {
  const i = args[0] ?? 0;
  switch (m) {
    case 'price':
      return { seen: { tenant: r.tenant }, rows: [`price:${r.tenant}:${i}`], parts: [] };
    case 'cost':
      return isAdmin(r) ? { seen: { roles: rolesKey(r.roles), tenant: r.tenant }, rows: [`cost:${r.tenant}:${i}`], parts: [] } : { seen: { roles: rolesKey(r.roles) }, rows: [], parts: [] };
    case 'label': {
      const promo = node.rows.find(row => row.id === `promo:${i}`)?.v ?? 1;
      return promo % 2 === 1 ? { seen: { tenant: r.tenant }, rows: [`promo:${i}`, `label:${r.tenant}:${i}`], parts: [] } : { seen: {}, rows: [`promo:${i}`], parts: [] };
    }
    case 'badge':
      return r.roles.includes('staff') ? { seen: { roles: rolesKey(r.roles), tenant: r.tenant }, rows: [`badge:${r.tenant}:${i}`], parts: [] } : { seen: { roles: rolesKey(r.roles) }, rows: [], parts: [] };
    case 'teaser':
      return { seen: {}, rows: [], parts: [['label', [i]]] };
    case 'card':
      return { seen: {}, rows: [], parts: [['price', [i]], ['cost', [i]], ['label', [i]], ['badge', [i]]] };
    case 'page':
      return { seen: {}, rows: [], parts: [['card', [i]], ['card', [item(i + 1)]]] };
    case 'profile':
      return { seen: { user: r.user }, rows: [`pref:${r.user}`], parts: [['cost', [i]], ['price', [i]]] };
    case 'listing': {
      const p = r.query?.page ?? 0;
      return { seen: { page: p }, rows: [], parts: [['price', [item(p)]], ['price', [item(p + 1)]]] };
    }
    case 'home':
      return { seen: {}, rows: [], parts: [['page', [i]], ['profile', [i]], ['listing', []]] };
  }
}

/** Random arguments for a method. */
export function randomVaryArgs(rng: Rng, m: VaryMethod): number[] {
  return m === 'listing' ? [] : [rng.int(ITEMS)];
}

/** Every call of every method (what a sweep reads under each request). */
export function allVaryCalls(): Array<[VaryMethod, number[]]> {
  const calls: Array<[VaryMethod, number[]]> = [];
  for (const m of VARY_METHODS) {
    if (m === 'listing') calls.push([m, []]);
    else for (let i = 0; i < ITEMS; i++) calls.push([m, [i]]);
  }
  return calls;
}

// ---------------------------------------------------------------------------------------------------------------
// The data source

/** Fault rates of the data source while the driver runs (sweeps turn them off). */
export interface VaryFaults {
  /** Probability that a read is held open until the driver releases it. */
  hold: number;
  /** Probability that a read throws (after its hold, if held). */
  fail: number;
}

/** Versioned rows. A read takes its snapshot when it starts, then may be held open and may throw. */
export class VaryDataSource {
  readonly versions = new Map<string, number>(allRows().map(row => [row, 1]));
  /** Per row: the highest version whose write and invalidation both completed. */
  readonly acked = new Map<string, number>(allRows().map(row => [row, 1]));
  /** Per row: writes whose invalidation did not complete cleanly (threw or pending). */
  readonly unacked = new Map<string, number>();
  readonly held: Array<() => void> = [];
  faults: VaryFaults = { hold: 0, fail: 0 };
  reads = 0;

  constructor(readonly rng: Rng) {}

  async read(row: string): Promise<number> {
    this.reads++;
    const v = this.versions.get(row);
    if (v === undefined) throw new Error(`model: no row ${row}`);
    const fail = this.rng.chance(this.faults.fail);
    if (this.rng.chance(this.faults.hold)) await new Promise<void>(release => this.held.push(release));
    if (fail) throw new Error(`data source: read of ${row} failed`);
    return v;
  }

  /** A synchronous read (for synchronous cached methods): never held, never failing. */
  readNow(row: string): number {
    this.reads++;
    const v = this.versions.get(row);
    if (v === undefined) throw new Error(`model: no row ${row}`);
    return v;
  }

  write(row: string): number {
    const v = this.versions.get(row)! + 1;
    this.versions.set(row, v);
    return v;
  }

  acknowledge(row: string, v: number): void {
    if (v > this.acked.get(row)!) this.acked.set(row, v);
  }

  releaseOne(): boolean {
    if (this.held.length === 0) return false;
    this.held.splice(this.rng.int(this.held.length), 1)[0]!();
    return true;
  }

  releaseAll(): void {
    for (const release of this.held.splice(0)) release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The cached methods

export interface VaryModelEnv {
  read(row: string): Promise<number>;
  readNow(row: string): number;
  readonly scope: RequestScope;
  /** Makes node ids unique across services. */
  readonly tag: string;
}

export interface VaryModelInstance {
  price(i: number): Promise<VaryNode>;
  cost(i: number): Promise<VaryNode>;
  label(i: number): Promise<VaryNode>;
  badge(i: number): VaryNode | Promise<VaryNode>;
  teaser(i: number): Promise<VaryNode>;
  card(i: number): Promise<VaryNode>;
  page(i: number): Promise<VaryNode>;
  profile(i: number): Promise<VaryNode>;
  listing(): Promise<VaryNode>;
  home(i: number): Promise<VaryNode>;
  /** How many times each method body ran (misses that computed). */
  readonly executions: Record<VaryMethod, number>;
}

export type VaryModelClass = new (env: VaryModelEnv, service: CachingService) => VaryModelInstance;

export interface VaryModelOptions {
  /**
   * Broken on purpose: cost(i) reads the roles and the tenant from the application's AsyncLocalStorage
   * directly instead of through readContext, so nothing makes its entry (or its callers') vary by them.
   */
  readonly readsRequestDirectly?: boolean;
  /** badge(i) as a synchronous cached method (only on a synchronous backend: MemoryBackend). @default false */
  readonly syncBadge?: boolean;
}

let scopes = 0;

/**
 * Defines the model's class. `scope` keeps keys of separate runs apart; instances of one class bound to
 * services sharing a store share entries (as two processes running the same code do).
 */
export function defineVaryModel(options: VaryModelOptions = {}, scope = `VaryBy${scopes++}`): VaryModelClass {
  const o = (varyBy?: string[]): CacheOptions => ({ scope, ...(varyBy ? { varyBy } : {}) });
  let counter = 0;
  // Not cached: a plain async function between cached calls must not break the chain (SPEC §4).
  /** Calls `fn` now; a synchronous throw becomes a rejected promise. */
  const settledNow = <T>(fn: () => T | Promise<T>): T | Promise<T> => {
    try {
      return fn();
    } catch (error) {
      return Promise.reject(error);
    }
  };
  const plain = async <T>(fn: () => Promise<T>): Promise<T> => {
    await Promise.resolve();
    return fn();
  };

  class VaryByModel implements VaryModelInstance {
    readonly #env: VaryModelEnv;
    readonly executions: Record<VaryMethod, number> = { price: 0, cost: 0, label: 0, badge: 0, teaser: 0, card: 0, page: 0, profile: 0, listing: 0, home: 0 };

    constructor(env: VaryModelEnv, service: CachingService) {
      this.#env = env;
      bindCachingService(this, service);
    }

    #node(m: VaryMethod, args: number[], seen: Seen, rows: RowRead[], parts: VaryNode[]): VaryNode {
      return { id: `${this.#env.tag}:${counter++}`, m, args, seen, rows, parts };
    }

    async #read(row: string): Promise<RowRead> {
      addDependency(row);
      return { id: row, v: await this.#env.read(row) };
    }

    @Cache(o(['tenant']))
    async price(i: number): Promise<VaryNode> {
      this.executions.price++;
      // Declared varyBy: reading the request directly is what an application does, and is safe.
      const { tenant } = this.#env.scope.required();
      return this.#node('price', [i], { tenant }, [await this.#read(`price:${tenant}:${i}`)], []);
    }

    @Cache(o())
    async cost(i: number): Promise<VaryNode> {
      this.executions.cost++;
      const direct = options.readsRequestDirectly === true;
      const roles = (direct ? this.#env.scope.required().roles : readContext('user.roles')) as readonly string[];
      if (!roles.includes('admin')) return this.#node('cost', [i], { roles: rolesKey(roles) }, [], []);
      const tenant = (direct ? this.#env.scope.required().tenant : readContext('tenant')) as string;
      return this.#node('cost', [i], { roles: rolesKey(roles), tenant }, [await this.#read(`cost:${tenant}:${i}`)], []);
    }

    @Cache(o())
    async label(i: number): Promise<VaryNode> {
      this.executions.label++;
      const promo = await this.#read(`promo:${i}`);
      if (promo.v % 2 === 0) return this.#node('label', [i], {}, [promo], []);
      // Only this branch reads the tenant, after an await: which contexts an entry varies by depends on data.
      const tenant = readContext('tenant') as string;
      return this.#node('label', [i], { tenant }, [promo, await this.#read(`label:${tenant}:${i}`)], []);
    }

    badge(i: number): VaryNode | Promise<VaryNode> {
      return options.syncBadge === true ? this.badgeNow(i) : this.badgeLater(i);
    }

    @Cache(o())
    badgeNow(i: number): VaryNode {
      this.executions.badge++;
      const roles = readContext('user.roles') as readonly string[];
      if (!roles.includes('staff')) return this.#node('badge', [i], { roles: rolesKey(roles) }, [], []);
      const tenant = readContext('tenant') as string;
      const row = `badge:${tenant}:${i}`;
      addDependency(row);
      return this.#node('badge', [i], { roles: rolesKey(roles), tenant }, [{ id: row, v: this.#env.readNow(row) }], []);
    }

    @Cache(o())
    async badgeLater(i: number): Promise<VaryNode> {
      this.executions.badge++;
      const roles = readContext('user.roles') as readonly string[];
      if (!roles.includes('staff')) return this.#node('badge', [i], { roles: rolesKey(roles) }, [], []);
      const tenant = readContext('tenant') as string;
      return this.#node('badge', [i], { roles: rolesKey(roles), tenant }, [await this.#read(`badge:${tenant}:${i}`)], []);
    }

    /** No varyBy; label(i) is its only part, so a failure of label(i) is all that makes it vary. */
    @Cache(o())
    async teaser(i: number): Promise<VaryNode> {
      this.executions.teaser++;
      try {
        return this.#node('teaser', [i], {}, [], [await this.label(i)]);
      } catch (error) {
        addDependency(`promo:${i}`); // a promo change clears the stored failure
        return this.#node('teaser', [i], {}, [], [{ ...this.#node('label', [i], {}, [], []), failure: (error as Error).message }]);
      }
    }

    @Cache(o())
    async card(i: number): Promise<VaryNode> {
      this.executions.card++;
      // badge(i) may be synchronous and throw at once: as a rejection, so that Promise.all still awaits (and
      // handles) the siblings already started.
      const parts = await Promise.all([this.price(i), this.cost(i), this.label(i), settledNow(() => this.badge(i))]);
      return this.#node('card', [i], {}, [], parts);
    }

    @Cache(o())
    async page(i: number): Promise<VaryNode> {
      this.executions.page++;
      const first = await this.card(i);
      // A failing second card is replaced by a placeholder carrying the failure, which is stored with the page:
      // the page then varies by what the failed card varied by (it is that tenant's failure).
      const second = await plain(() => this.card(item(i + 1))).catch((error: Error) => ({ ...this.#node('card', [item(i + 1)], {}, [], []), failure: error.message }));
      return this.#node('page', [i], {}, [], [first, second]);
    }

    @Cache(o(['user']))
    async profile(i: number): Promise<VaryNode> {
      this.executions.profile++;
      const { user } = this.#env.scope.required();
      const pref = await this.#read(`pref:${user}`);
      const parts = await Promise.all([this.cost(i), this.price(i)]);
      return this.#node('profile', [i], { user }, [pref], parts);
    }

    @Cache(o(['query:page']))
    async listing(): Promise<VaryNode> {
      this.executions.listing++;
      const page = this.#env.scope.required().query!.page;
      const parts = await Promise.all([this.price(item(page)), this.price(item(page + 1))]);
      return this.#node('listing', [], { page }, [], parts);
    }

    @Cache(o())
    async home(i: number): Promise<VaryNode> {
      this.executions.home++;
      const parts = await Promise.all([this.page(i), this.profile(i), plain(() => this.listing())]);
      return this.#node('home', [i], {}, [], parts);
    }
  }
  return VaryByModel;
}

/** Calls method `m` of a model instance (inside the current request, if any). */
export function callVaryModel(model: VaryModelInstance, m: VaryMethod, args: readonly number[]): Promise<VaryNode> {
  try {
    return Promise.resolve((model[m] as (...a: number[]) => VaryNode | Promise<VaryNode>).apply(model, args as number[]));
  } catch (error) {
    return Promise.reject(error); // a synchronous method throws
  }
}

/** The method whose entries read a row (what `invalidateCall` removes after a write of it). */
function callsReading(row: string): Array<[VaryMethod, number[]]> {
  const [kind, , i] = row.split(':');
  switch (kind) {
    case 'price':
      return [['price', [Number(i)]]];
    case 'cost':
      return [['cost', [Number(i)]]];
    case 'label':
      return [['label', [Number(i)]]];
    case 'badge':
      return [['badge', [Number(i)]]];
    case 'promo':
      return [['label', [Number(row.split(':')[1])]]];
    default: // pref:<user> is read by profile(i) for every i
      return Array.from({ length: ITEMS }, (_, n) => ['profile', [n]] as [VaryMethod, number[]]);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The driver

/** One service (or process) the driver sends calls and writes to. */
export interface VaryActor {
  readonly name: string;
  readonly service: CachingService;
  readonly model: VaryModelInstance;
}

export type VaryWriteKind = 'invalidate' | 'invalidateCall';

export type VaryInvariant = 'tenant' | 'user' | 'role' | 'query' | 'shape' | 'ryw' | 'sweep' | 'error' | 'hang';

export interface VaryViolation {
  readonly invariant: VaryInvariant;
  readonly detail: string;
}

export interface VaryRunOptions {
  readonly seed: number;
  readonly operations: number;
  /** Maximum calls and writes in flight at once. */
  readonly concurrency: number;
  readonly actors: readonly VaryActor[];
  readonly ds: VaryDataSource;
  readonly scope: RequestScope;
  readonly faults: VaryFaults;
  /** Probability per step of a quiet-point sweep. @default 0.003 */
  readonly sweepRate?: number;
  /** Probability per step of a burst: one call started under several requests at once. @default 0.06 */
  readonly burstRate?: number;
  /** Probability that a request has no query string (its calls needing the page fail). @default 0.05 */
  readonly noQueryRate?: number;
  /** Requests a sweep reads every call under (for each actor). @default every tenant × every user */
  readonly sweepRequests?: (sweep: number) => readonly Request[];
  /**
   * Whether a write through one actor must be visible at once through the others (one shared store). When
   * false (processes with local copies kept fresh by messages), only the writer's own calls are checked at
   * once; every actor is checked at sweeps, after `quiesce`. @default true
   */
  readonly crossActorRyw?: boolean;
  /** Runs before a sweep compares values, once everything settled. */
  readonly quiesce?: () => Promise<void>;
  /** Real-time bound (ms) for settling once every read is released. @default 5000 */
  readonly settleMs?: number;
  /** Stop collecting after this many violations. @default 50 */
  readonly maxViolations?: number;
  /** Collects a line per step, to read how a violation came about. */
  readonly trace?: string[];
}

export interface VaryRunReport {
  readonly seed: number;
  readonly operations: number;
  readonly calls: number;
  readonly writes: number;
  /** Calls failed by the data source (expected). */
  readonly failedCalls: number;
  /** Calls without a query string that failed with E_CONTEXT naming 'query' (expected). */
  readonly contextErrors: number;
  readonly bursts: number;
  readonly sweeps: number;
  /** Values checked, at every nesting level. */
  readonly nodes: number;
  /** Placeholders for a failed card returned inside pages (stored failures, checked like data). */
  readonly placeholders: number;
  /** The services' statistics, summed: hits, misses and single-flight joins. */
  readonly hits: number;
  readonly misses: number;
  readonly joins: number;
  readonly violations: VaryViolation[];
  /** Violations per invariant (all of them, also past maxViolations). */
  readonly counts: Partial<Record<VaryInvariant, number>>;
}

const macrotask = () => new Promise<void>(resolve => setImmediate(resolve));

function contextError(error: unknown): CachingError | undefined {
  for (let e = error; e instanceof Error; e = e.cause) if (e instanceof CachingError && (e.code as string) === 'E_CONTEXT') return e;
  return undefined;
}

/** Runs the model: `operations` random steps, then a final sweep. Returns every violation found. */
export async function runVaryModel(o: VaryRunOptions): Promise<VaryRunReport> {
  const rng = new Rng(o.seed ^ 0x5bd1e995);
  const violations: VaryViolation[] = [];
  const counts: Partial<Record<VaryInvariant, number>> = {};
  const report = (v: VaryViolation) => {
    counts[v.invariant] = (counts[v.invariant] ?? 0) + 1;
    o.trace?.push(`VIOLATION [${v.invariant}] ${v.detail}`);
    if (violations.length < (o.maxViolations ?? 50)) violations.push(v);
  };
  const inflight = new Set<Promise<unknown>>();
  let calls = 0;
  let writes = 0;
  let failedCalls = 0;
  let contextErrors = 0;
  let bursts = 0;
  let sweeps = 0;
  let nodes = 0;
  let placeholders = 0;
  const crossActor = o.crossActorRyw ?? true;
  /** Without cross-actor visibility: what every actor sees (as of the last quiesce), and each actor's own acks. */
  let baseline = new Map(o.ds.acked);
  const own = new Map<string, Map<string, number>>(o.actors.map(a => [a.name, new Map()]));
  const visibleTo = (actor: VaryActor): ReadonlyMap<string, number> => {
    if (crossActor) return new Map(o.ds.acked);
    const seen = new Map(baseline);
    for (const [row, v] of own.get(actor.name)!) if (v > seen.get(row)!) seen.set(row, v);
    return seen;
  };
  const log = (line: string) => o.trace?.push(line);

  interface CheckContext {
    readonly request: Request;
    readonly acked: ReadonlyMap<string, number>;
    readonly exact?: ReadonlyMap<string, number>;
    readonly path: string;
  }

  /** A failure is data too: the row its message names must be one the caller may read. */
  const checkFailure = (message: string, where: string, r: Request): void => {
    const row = /read of (\S+) failed/.exec(message)?.[1];
    if (row === undefined) return report({ invariant: 'error', detail: `${where} failed with ${message}` });
    const owner = ownerOf(row);
    if (owner.tenant !== undefined && owner.tenant !== r.tenant) report({ invariant: 'tenant', detail: `${where} carries another tenant's failure: ${message}` });
    if (owner.user !== undefined && owner.user !== r.user) report({ invariant: 'user', detail: `${where} carries another user's failure: ${message}` });
    if (owner.adminOnly && !isAdmin(r)) report({ invariant: 'role', detail: `${where} carries a failure reading admin-only data: ${message}` });
  };

  /** Checks one returned value against the caller's request, recursively. */
  const check = (node: VaryNode, m: VaryMethod, args: readonly number[], ctx: CheckContext): void => {
    nodes++;
    const r = ctx.request;
    const where = `${ctx.path}${m}(${args.join(',')})`;
    if (node === null || typeof node !== 'object' || node.m !== m || node.args.length !== args.length || node.args.some((a, i) => a !== args[i])) {
      report({ invariant: 'shape', detail: `${where} returned the value of ${node?.m}(${node?.args?.join(',')})` });
      return;
    }
    if (node.failure !== undefined) {
      placeholders++;
      checkFailure(node.failure, where, r);
      return;
    }
    let leaked = false;
    for (const row of node.rows) {
      const owner = ownerOf(row.id);
      if (owner.tenant !== undefined && owner.tenant !== r.tenant) {
        report({ invariant: 'tenant', detail: `${where} holds ${row.id}, data of tenant ${owner.tenant}` });
        leaked = true;
      }
      if (owner.user !== undefined && owner.user !== r.user) {
        report({ invariant: 'user', detail: `${where} holds ${row.id}, the preferences of ${owner.user}` });
        leaked = true;
      }
      if (owner.adminOnly && !isAdmin(r)) {
        report({ invariant: 'role', detail: `${where} holds ${row.id}, admin-only data, for a caller who is not an admin` });
        leaked = true;
      }
    }
    const seen = node.seen ?? {};
    if (seen.tenant !== undefined && seen.tenant !== r.tenant) report({ invariant: 'tenant', detail: `${where} was computed for tenant ${seen.tenant}` });
    if (seen.user !== undefined && seen.user !== r.user) report({ invariant: 'user', detail: `${where} was computed for user ${seen.user}` });
    if (seen.roles !== undefined && seen.roles !== rolesKey(r.roles)) report({ invariant: 'role', detail: `${where} was computed for roles ${seen.roles}` });
    if (seen.page !== undefined && seen.page !== r.query?.page) report({ invariant: 'query', detail: `${where} was computed for page ${seen.page}` });
    const expected = expectedOf(m, args, r, node);
    const seenKeys = Object.keys(seen).sort().join(',');
    const expectedKeys = Object.keys(expected.seen).sort().join(',');
    const rowIds = node.rows.map(row => row.id).join(',');
    if (!leaked && (seenKeys !== expectedKeys || rowIds !== expected.rows.join(','))) {
      report({ invariant: 'shape', detail: `${where} read [${seenKeys}] and rows [${rowIds}], expected [${expectedKeys}] and [${expected.rows.join(',')}]` });
    }
    for (const row of node.rows) {
      const acked = ctx.acked.get(row.id);
      if (acked !== undefined && row.v < acked) report({ invariant: 'ryw', detail: `${where} saw version ${row.v} of ${row.id}; version ${acked} was written and its invalidation resolved before the call started` });
      const exact = ctx.exact?.get(row.id);
      if (exact !== undefined && row.v !== exact) report({ invariant: 'sweep', detail: `${where} at a quiet point saw version ${row.v} of ${row.id}, current is ${exact}: a stale value is stored` });
    }
    if (node.parts.length !== expected.parts.length) {
      report({ invariant: 'shape', detail: `${where} has ${node.parts.length} parts, expected ${expected.parts.length}` });
      return;
    }
    expected.parts.forEach(([pm, pargs], i) => check(node.parts[i]!, pm, pargs, { ...ctx, path: `${where} → ` }));
  };

  /** What each call or write in flight is, for a hang's report. */
  const pending = new Map<Promise<unknown>, string>();
  const track = (promise: Promise<unknown>, what = ''): void => {
    inflight.add(promise);
    pending.set(promise, what);
    void promise.finally(() => pending.delete(promise));
    void promise.finally(() => inflight.delete(promise));
  };

  const randomRequest = (): Request => {
    const user = rng.pick(USER_NAMES);
    return request(rng.pick(TENANTS), user, rng.chance(o.noQueryRate ?? 0.05) ? null : rng.int(PAGES));
  };

  const startCall = (actor: VaryActor, m: VaryMethod, args: readonly number[], req: Request, exact?: ReadonlyMap<string, number>): Promise<void> => {
    const n = calls++;
    const ctx: CheckContext = { request: req, acked: visibleTo(actor), path: `${actor.name} ${describe(req)}: `, ...(exact ? { exact } : {}) };
    const needsPage = NEEDS_QUERY.has(m) && req.query === undefined;
    log(`call#${n} ${ctx.path}${m}(${args.join(',')})`);
    const what = `call#${n} ${ctx.path}${m}(${args.join(',')})`;
    const p = o.scope
      .run(req, () => callVaryModel(actor.model, m, args))
      .then(
        node => {
          log(`call#${n} → ${node?.id}`);
          if (needsPage) report({ invariant: 'query', detail: `${ctx.path}${m}(${args.join(',')}) was served without a query string (provider 'query' throws): a value computed for another request` });
          check(node, m, args, ctx);
        },
        (error: unknown) => {
          log(`call#${n} ✗ ${String(error)}`);
          const fromContext = contextError(error);
          if (fromContext !== undefined) {
            if (needsPage && fromContext.message.includes('query')) contextErrors++;
            else report({ invariant: 'error', detail: `${ctx.path}${m}(${args.join(',')}) failed with E_CONTEXT: ${fromContext.message}` });
          } else if (String((error as Error)?.message).startsWith('data source:')) {
            failedCalls++;
            checkFailure((error as Error).message, `${ctx.path}${m}(${args.join(',')})`, req);
          } else report({ invariant: 'error', detail: `${ctx.path}${m}(${args.join(',')}) rejected: ${String(error)}` });
        },
      );
    track(p, what);
    return p;
  };

  const startWrite = (actor: VaryActor, kind: VaryWriteKind, row: string): void => {
    const n = writes++;
    const v = o.ds.write(row);
    // invalidateCall inside a request or outside any: either way it removes every variant of the call.
    const req = rng.chance(0.5) ? randomRequest() : undefined;
    log(`write#${n} ${actor.name} ${kind} ${row} → ${v}${req ? ` in ${describe(req)}` : ''}`);
    const invalidation = async (): Promise<boolean> => {
      if (kind === 'invalidate') return (await actor.service.invalidate(row)).pending !== true;
      const results = await Promise.all(callsReading(row).map(([m, args]) => actor.service.invalidateCall(() => callVaryModel(actor.model, m, args))));
      return results.every(result => (result as { pending?: boolean } | undefined)?.pending !== true);
    };
    const p = (req ? o.scope.run(req, invalidation) : invalidation()).then(
      done => {
        log(`write#${n} → ${done ? 'acknowledged' : 'pending'}`);
        if (!done) return void o.ds.unacked.set(row, (o.ds.unacked.get(row) ?? 0) + 1);
        o.ds.acknowledge(row, v);
        const mine = own.get(actor.name)!;
        if (v > (mine.get(row) ?? 0)) mine.set(row, v);
      },
      (error: unknown) => {
        o.ds.unacked.set(row, (o.ds.unacked.get(row) ?? 0) + 1);
        report({ invariant: 'error', detail: `${actor.name} ${kind} ${row} rejected: ${String(error)}` });
      },
    );
    track(p);
  };

  /**
   * Releases every held read (repeatedly: released computations read again) until nothing is in flight and
   * nothing is held. A computation can outlive every call the driver made (its caller failed first, in a
   * Promise.all that another part rejected): its held read is released too, or a later call joining it waits.
   */
  const settle = async (): Promise<void> => {
    const saved = o.ds.faults;
    o.ds.faults = { hold: 0, fail: 0 };
    const deadline = Date.now() + (o.settleMs ?? 5_000);
    while ((inflight.size > 0 || o.ds.held.length > 0) && Date.now() < deadline) {
      o.ds.releaseAll();
      await Promise.race([macrotask(), new Promise(resolve => setTimeout(resolve, 5))]);
    }
    if (inflight.size > 0) {
      report({ invariant: 'hang', detail: `${inflight.size} calls did not settle within ${o.settleMs ?? 5_000} ms after every data read was released: ${[...pending.values()].slice(0, 5).join('; ')}` });
      inflight.clear();
    }
    o.ds.faults = saved;
  };

  /** Resolves true once one call in flight settles, false if none does within settleMs. */
  const oneSettles = async (): Promise<boolean> => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(false), o.settleMs ?? 5_000)));
    try {
      return await Promise.race([Promise.race([...inflight]).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  };

  const everyRequest = (k: number): Request[] => TENANTS.flatMap(t => USER_NAMES.map(u => request(t, u, k % PAGES)));

  const sweep = async (): Promise<void> => {
    sweeps++;
    await settle();
    await o.quiesce?.();
    baseline = new Map(o.ds.acked);
    const saved = o.ds.faults;
    o.ds.faults = { hold: 0, fail: 0 };
    // Rows with an unacknowledged write may legitimately be stale: compare the others exactly.
    const exact = new Map([...o.ds.versions].filter(([row]) => (o.ds.unacked.get(row) ?? 0) === 0));
    const requests = o.sweepRequests?.(sweeps) ?? everyRequest(sweeps);
    for (const actor of o.actors) {
      for (const req of requests) {
        const work = Promise.all(allVaryCalls().map(([m, args]) => startCall(actor, m, args, req, exact)));
        let timer: ReturnType<typeof setTimeout> | undefined;
        const settled = await Promise.race([work.then(() => true), new Promise<boolean>(resolve => (timer = setTimeout(() => resolve(false), o.settleMs ?? 5_000)))]);
        clearTimeout(timer);
        if (!settled) {
          report({ invariant: 'hang', detail: `sweep calls did not settle within ${o.settleMs ?? 5_000} ms (${o.ds.held.length} reads held): ${[...pending.values()].slice(0, 5).join('; ')}` });
          return;
        }
      }
    }
    o.ds.faults = saved;
    // Sweep reads stored current data for rows with an unacknowledged write: from here on compare them again.
    for (const [row, pending] of o.ds.unacked) if (pending > 0 && o.ds.acked.get(row)! >= o.ds.versions.get(row)!) o.ds.unacked.delete(row);
  };

  const rows = allRows();
  const writeKinds: readonly VaryWriteKind[] = ['invalidate', 'invalidateCall'];
  o.ds.faults = o.faults;
  for (let step = 0; step < o.operations; step++) {
    if ((counts.hang ?? 0) > 0) break;
    const roll = rng.next();
    if (rng.chance(o.sweepRate ?? 0.003)) {
      await sweep();
    } else if (inflight.size >= o.concurrency || (roll < 0.25 && o.ds.held.length > 0)) {
      if (!o.ds.releaseOne()) {
        // Every slot is taken by calls waiting on the backend (Redis): wait for one, without counting a step.
        if (!(await oneSettles())) {
          report({ invariant: 'hang', detail: `${inflight.size} calls in flight, none held by the data source, and none settled within ${o.settleMs ?? 5_000} ms` });
          break;
        }
        step--;
        continue;
      }
    } else if (roll < 0.8) {
      const m = rng.pick(VARY_METHODS);
      const args = randomVaryArgs(rng, m);
      if (rng.chance(o.burstRate ?? 0.06)) {
        // Concurrent first calls of one method under different requests: single-flight must keep them apart.
        bursts++;
        for (let k = 2 + rng.int(3); k > 0; k--) void startCall(rng.pick(o.actors), m, args, randomRequest());
      } else void startCall(rng.pick(o.actors), m, args, randomRequest());
    } else {
      startWrite(rng.pick(o.actors), rng.pick(writeKinds), rng.pick(rows));
    }
    const y = rng.int(4);
    if (y === 1) for (let i = rng.int(5); i >= 0; i--) await Promise.resolve();
    else if (y === 2) await macrotask();
  }
  await sweep();
  o.ds.faults = { hold: 0, fail: 0 };
  const stats = o.actors.map(a => a.service.stats());
  const sum = (name: 'hits' | 'misses' | 'joins') => stats.reduce((total, s) => total + s[name], 0);
  return { seed: o.seed, operations: o.operations, calls, writes, failedCalls, contextErrors, bursts, sweeps, nodes, placeholders, hits: sum('hits'), misses: sum('misses'), joins: sum('joins'), violations, counts };
}

/** A one-line summary of a report for assertion messages. */
export function summarizeVary(r: VaryRunReport): string {
  const counts = Object.entries(r.counts)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  return `seed ${r.seed}: ${r.operations} operations, ${r.calls} calls (${r.nodes} values checked, ${r.placeholders} of them failures), ${r.writes} writes, ${r.bursts} bursts, ${r.failedCalls} failed by the data source, ${r.contextErrors} E_CONTEXT without a query string, ${r.sweeps} sweeps, ${r.hits} hits, ${r.misses} misses, ${r.joins} joins; violations: ${counts || 'none'}\n${r.violations
    .slice(0, 8)
    .map(v => `  [${v.invariant}] ${v.detail}`)
    .join('\n')}`;
}

/** Actors for `count` services on `backends` (one each, or one shared), with the providers of `contexts`. */
export function varyActors(
  count: number,
  backend: (i: number) => CachingBackend,
  { ds, scope, model = defineVaryModel(), contexts = requestContexts(scope) }: { ds: VaryDataSource; scope: RequestScope; model?: VaryModelClass; contexts?: Record<string, (param?: string) => unknown> },
): VaryActor[] {
  return Array.from({ length: count }, (_, i) => {
    const service = new CachingService({ backend: backend(i), contexts, telemetry: false });
    service.on('error', () => undefined);
    return { name: `service${i}`, service, model: new model({ read: row => ds.read(row), readNow: row => ds.readNow(row), scope, tag: `s${i}` }, service) };
  });
}
