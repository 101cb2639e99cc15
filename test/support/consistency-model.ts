// A randomized, model-based consistency checker (SPEC §4, §6, §7, §8).
//
// A versioned data source (rows with versions) is read by a DAG of cached methods — a leaf, a multi-argument
// method, a Promise.all fan-out, a diamond and a chain four levels deep. Every value carries the argument
// tuple it was computed for and, at its leaves, the version of each row it read. A seeded driver interleaves
// readers, writers (update a row, then `invalidate`, an @InvalidateCache method, `invalidateCall` or
// `refreshCall`), held-open data reads released in random order, failures, clock advances and
// microtask/macrotask yields, and checks every returned value, at every level, against the model:
//
//   ryw        a call that starts after the invalidation of row r resolved sees a version of r ≥ the one
//              written before that invalidation (SPEC §6, read-your-writes; fail-safe fallbacks included).
//              With `visibleAfter` (processes with a local copy, kept fresh by a bus), a write by another
//              actor counts from its resolution plus that actor pair's propagation bound
//   shape      no value mixes argument tuples: each node is the value of the call it is returned for
//   sweep      at quiet points (everything settled, no faults), every call returns current data: nothing
//              stale is stored
//   expiry     no hit serves an entry past its TTL or lapsed sliding window; a parent is never stored with an
//              expiry beyond a live child's (SPEC §4)
//   failsafe   a value served past its expiry is within its maxStaleness window (fail-safe), never later
//   hang       every call settles
//
// Imports are relative (not 'aspect-cache') so that the same file runs in a plain Node child process (tsx).
import { addDependency, bindCachingService, Cache, CachingService, InvalidateCache } from '../../src/index.js';
import type { BackendListener, CacheEntryInput, CacheLookup, CachingBackend, InvalidateOptions, InvalidationResult, StoreOutcome } from '../../src/backends/backend.js';
import type { CacheOptions } from '../../src/service/options.js';

// ---------------------------------------------------------------------------------------------------------------
// Randomness

/** mulberry32: a tiny seeded PRNG, so a failing seed reproduces. */
export class Rng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Values

/** What every cached method returns: the call it was computed for, the rows it read, its parts. */
export interface Node {
  /** Unique per computation (process tag + counter). */
  readonly id: string;
  readonly m: MethodName;
  readonly args: readonly number[];
  /** Leaves only: the row read and its version. */
  readonly row?: { readonly r: number; readonly v: number };
  readonly parts: readonly Node[];
  /** Clock time when the method body returned. */
  readonly computedAt: number;
}

export type MethodName = 'getRow' | 'getPair' | 'getGroup' | 'midA' | 'midB' | 'top';
export const METHODS: readonly MethodName[] = ['getRow', 'getPair', 'getGroup', 'midA', 'midB', 'top'];

/** Number of rows in the data source. */
export const ROWS = 6;
const mod = (n: number) => ((n % ROWS) + ROWS) % ROWS;
const groupRows = (g: number) => [mod(g), mod(g + 1), mod(g + 3)];

/** The calls a method makes for given arguments: the expected shape of its value. */
export function expectedParts(m: MethodName, args: readonly number[]): Array<[MethodName, number[]]> {
  const [a = 0, b = 0] = args;
  switch (m) {
    case 'getRow':
      return [];
    case 'getPair':
      return [
        ['getRow', [a]],
        ['getRow', [b]],
      ];
    case 'getGroup':
      return groupRows(a).map(r => ['getRow', [r]] as [MethodName, number[]]);
    case 'midA':
      return [
        ['getRow', [a]],
        ['getRow', [mod(a + 1)]],
      ];
    case 'midB':
      return [
        ['getRow', [a]],
        ['getPair', [a, mod(a + 2)]],
      ];
    case 'top':
      return [
        ['midA', [a]],
        ['midB', [a]],
      ];
  }
}

/** Random arguments for a method. */
export function randomArgs(rng: Rng, m: MethodName): number[] {
  return m === 'getPair' ? [rng.int(ROWS), rng.int(ROWS)] : [rng.int(ROWS)];
}

/** Every argument tuple of every method (what a sweep reads). */
export function allCalls(): Array<[MethodName, number[]]> {
  const calls: Array<[MethodName, number[]]> = [];
  for (const m of METHODS) {
    if (m === 'getPair') for (let a = 0; a < ROWS; a++) for (let b = 0; b < ROWS; b++) calls.push([m, [a, b]]);
    else for (let a = 0; a < ROWS; a++) calls.push([m, [a]]);
  }
  return calls;
}

// ---------------------------------------------------------------------------------------------------------------
// The cached methods

/** Per-method cache options of one configuration (TTL, sliding, fail-safe). */
export type MethodOptions = Partial<Record<MethodName, Omit<CacheOptions, 'scope'>>>;

/** What the model's methods need from their surroundings. */
export interface ModelEnv {
  /** Reads a row: resolves to its version (may be held open, may throw). */
  read(r: number): Promise<number>;
  /** Writes a row inside the @InvalidateCache method: resolves to the new version. */
  write(r: number): Promise<number> | number;
  now(): number;
  /** Tag making node ids unique across processes. */
  tag: string;
}

export interface ModelInstance {
  getRow(r: number): Promise<Node>;
  getPair(a: number, b: number): Promise<Node>;
  getGroup(g: number): Promise<Node>;
  midA(x: number): Promise<Node>;
  midB(x: number): Promise<Node>;
  top(x: number): Promise<Node>;
  /** Writes row r, then (@InvalidateCache) invalidates getRow(r). */
  updateRow(r: number): Promise<number>;
}

export type ModelClass = new (env: ModelEnv, service: CachingService) => ModelInstance;

let scopes = 0;

/**
 * Defines the model's class with the given options. `scope` keeps keys of separate runs apart; instances of
 * one class bound to services sharing a store share entries (as two processes running the same code do).
 */
export function defineModel(options: MethodOptions, scope = `Consistency${scopes++}`): ModelClass {
  const o = (m: MethodName): CacheOptions => ({ scope, ...options[m] });
  let counter = 0;
  // Not cached: a plain async function between cached calls must not break the chain (SPEC §4).
  const plain = async <T>(fn: () => Promise<T>): Promise<T> => {
    await Promise.resolve();
    return fn();
  };

  class ConsistencyModel implements ModelInstance {
    readonly #env: ModelEnv;
    constructor(env: ModelEnv, service: CachingService) {
      this.#env = env;
      bindCachingService(this, service);
    }

    #node(m: MethodName, args: number[], parts: Node[], row?: { r: number; v: number }): Node {
      return { id: `${this.#env.tag}:${counter++}`, m, args, ...(row ? { row } : {}), parts, computedAt: this.#env.now() };
    }

    @Cache(o('getRow'))
    async getRow(r: number): Promise<Node> {
      addDependency(`row:${r}`);
      const v = await this.#env.read(r);
      return this.#node('getRow', [r], [], { r, v });
    }

    @Cache(o('getPair'))
    async getPair(a: number, b: number): Promise<Node> {
      const first = await this.getRow(a);
      const second = await plain(() => this.getRow(b));
      return this.#node('getPair', [a, b], [first, second]);
    }

    @Cache(o('getGroup'))
    async getGroup(g: number): Promise<Node> {
      const parts = await Promise.all(groupRows(g).map(r => this.getRow(r)));
      return this.#node('getGroup', [g], parts);
    }

    @Cache(o('midA'))
    async midA(x: number): Promise<Node> {
      const parts = await Promise.all([this.getRow(x), this.getRow(mod(x + 1))]);
      return this.#node('midA', [x], parts);
    }

    @Cache(o('midB'))
    async midB(x: number): Promise<Node> {
      const row = await this.getRow(x);
      const pair = await plain(() => this.getPair(x, mod(x + 2)));
      return this.#node('midB', [x], [row, pair]);
    }

    @Cache(o('top'))
    async top(x: number): Promise<Node> {
      const parts = await Promise.all([this.midA(x), plain(() => this.midB(x))]);
      return this.#node('top', [x], parts);
    }

    @InvalidateCache('getRow')
    async updateRow(r: number): Promise<number> {
      return this.#env.write(r);
    }
  }
  return ConsistencyModel;
}

/** Calls method `m` of a model instance. */
export function callModel(model: ModelInstance, m: MethodName, args: readonly number[]): Promise<Node> {
  return (model[m] as (...a: number[]) => Promise<Node>).apply(model, args as number[]);
}

// ---------------------------------------------------------------------------------------------------------------
// The data source

interface HeldRead {
  readonly release: () => void;
}

/** Fault rates of the data source while the driver runs (sweeps turn them off). */
export interface Faults {
  /** Probability that a read is held open until the driver releases it. */
  hold: number;
  /** Probability that a read throws (after its hold, if held). */
  fail: number;
}

/**
 * Rows with versions. A read takes its snapshot when it starts, then may be held open (a deferred the driver
 * releases in random order) and may throw.
 */
export class DataSource {
  readonly versions: number[] = Array.from({ length: ROWS }, () => 1);
  /** Per row: the highest version whose write and invalidation both completed (acknowledged). */
  readonly acked: number[] = Array.from({ length: ROWS }, () => 1);
  /** Per row: writes whose invalidation did not complete cleanly (threw or pending). */
  readonly unacked: number[] = Array.from({ length: ROWS }, () => 0);
  readonly held: HeldRead[] = [];
  faults: Faults = { hold: 0, fail: 0 };
  reads = 0;
  /** When set, a line per read (for reading a trace). */
  trace?: string[];

  constructor(readonly rng: Rng) {}

  async read(r: number): Promise<number> {
    this.reads++;
    const v = this.versions[r]!;
    const fail = this.rng.chance(this.faults.fail);
    const hold = this.rng.chance(this.faults.hold);
    this.trace?.push(`  read#${this.reads} row ${r} → ${v}${hold ? ' (held)' : ''}${fail ? ' (fails)' : ''}`);
    if (hold) await new Promise<void>(release => this.held.push({ release }));
    if (fail) throw new Error(`data source: read of row ${r} failed`);
    return v;
  }

  write(r: number): number {
    return ++this.versions[r]!;
  }

  acknowledge(r: number, v: number): void {
    if (v > this.acked[r]!) this.acked[r] = v;
  }

  /** Releases one held read (chosen at random); false if none is held. */
  releaseOne(): boolean {
    if (this.held.length === 0) return false;
    const i = this.rng.int(this.held.length);
    const [read] = this.held.splice(i, 1);
    read!.release();
    return true;
  }

  releaseAll(): void {
    for (const read of this.held.splice(0)) read.release();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Observing the store: what was stored with which expiry, and what each hit served

interface StoredRecord {
  readonly key: string;
  /** Absolute cap (ms on the clock); Infinity for none. */
  readonly cap: number;
  readonly sliding: number;
  /** Current expiry under the model (sliding windows moved by hits). */
  expiry: number;
}

export interface Violation {
  readonly invariant: 'ryw' | 'shape' | 'sweep' | 'expiry' | 'failsafe' | 'hang' | 'error';
  readonly detail: string;
}

/**
 * The expiry model shared by every observed backend of one run: records each stored value (by node id) with
 * its expiry, moves sliding windows on hits, and reports hits past expiry and parents stored beyond a child.
 */
export class ExpiryModel {
  readonly byId = new Map<string, StoredRecord>();
  readonly byKey = new Map<string, StoredRecord>();

  constructor(
    readonly now: () => number,
    /** Tolerance (ms) for clocks the model does not control (Redis measures TTLs itself). */
    readonly slack: number,
  ) {}

  /** Where violations go (set by {@link runModel}). */
  report: (v: Violation) => void = () => undefined;

  stored(key: string, entry: Pick<CacheEntryInput, 'value' | 'expiresAt' | 'sliding' | 'dependencies'>, at: number): void {
    const id = (entry.value as Node | undefined)?.id;
    if (id === undefined) return;
    // The children this value was computed from are its parts (the entries now stored under the children's
    // keys may hold other values: a newer one, or one a later computation could not replace).
    for (const part of (entry.value as Node).parts ?? []) {
      const child = this.byId.get(part.id);
      // Only live children: a child already past its expiry is a fail-safe fallback, checked where it is served.
      if (child !== undefined && child.expiry > at && entry.expiresAt > child.expiry + this.slack) {
        this.report({ invariant: 'expiry', detail: `${key} stored with expiry ${fmt(entry.expiresAt, at)} beyond its child ${child.key}'s ${fmt(child.expiry, at)} (SPEC §4: a parent never outlives a child)` });
      }
    }
    const record: StoredRecord = { key, cap: entry.expiresAt, sliding: entry.sliding, expiry: entry.sliding > 0 ? Math.min(entry.expiresAt, at + entry.sliding) : entry.expiresAt };
    this.byId.set(id, record);
    this.byKey.set(key, record);
  }

  hit(key: string, value: unknown, at: number): void {
    const id = (value as Node | undefined)?.id;
    const record = id === undefined ? undefined : this.byId.get(id);
    if (record === undefined) return; // stored by a process this model does not observe
    if (at > record.expiry + this.slack) {
      this.report({ invariant: 'expiry', detail: `hit on ${key} at ${fmt(at, at)} served an entry that expired at ${fmt(record.expiry, at)} (cap ${fmt(record.cap, at)}, sliding ${record.sliding})` });
    }
    if (record.sliding > 0) record.expiry = Math.max(record.expiry, Math.min(record.cap, at + record.sliding));
  }

  removed(keys: readonly string[]): void {
    for (const key of keys) this.byKey.delete(key);
  }
}

function fmt(t: number, now: number): string {
  return t === Infinity ? '∞' : `now${t - now >= 0 ? '+' : ''}${t - now}ms`;
}

function isThenable(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/** `then` on a maybe-promise, staying synchronous for synchronous answers (a sync backend stays sync). */
function after<T, U>(value: T | Promise<T>, fn: (v: T) => U): U | Promise<U> {
  return isThenable(value) ? (value as Promise<T>).then(fn) : fn(value as T);
}

/**
 * Wraps a backend to feed an {@link ExpiryModel}. Transparent: same answers, same synchrony.
 */
export class ObservedBackend implements CachingBackend {
  readonly name: string;
  readonly isSync: boolean;
  constructor(
    readonly inner: CachingBackend,
    readonly model: ExpiryModel,
  ) {
    this.name = `observed(${inner.name})`;
    this.isSync = inner.isSync;
  }
  get clock() {
    return this.inner.clock;
  }
  subscribe(listener: BackendListener): () => void {
    return this.inner.subscribe?.(listener) ?? (() => undefined);
  }
  check(token: unknown, key: string, dependencies: readonly string[]): boolean | Promise<boolean> {
    return this.inner.check === undefined ? false : this.inner.check(token, key, dependencies);
  }
  get(key: string): CacheLookup | Promise<CacheLookup> {
    const at = this.model.now();
    return after(this.inner.get(key), lookup => {
      if (lookup.hit) this.model.hit(key, lookup.value, at);
      return lookup;
    });
  }
  begin(key: string): unknown {
    return this.inner.begin(key);
  }
  set(key: string, entry: CacheEntryInput, token: unknown): StoreOutcome | Promise<StoreOutcome> {
    const at = this.model.now();
    return after(this.inner.set(key, entry, token), outcome => {
      if (outcome === 'stored') this.model.stored(key, entry, at);
      return outcome;
    });
  }
  abandon(token: unknown): void {
    this.inner.abandon(token);
  }
  invalidate(keys: readonly string[], options?: InvalidateOptions): InvalidationResult | Promise<InvalidationResult> {
    return after(this.inner.invalidate(keys, options), result => {
      this.model.removed(result?.removed ?? []);
      return result;
    });
  }
  clear() {
    return this.inner.clear();
  }
  dispose() {
    return this.inner.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Deliberately broken backends (the checker must catch them)

/** Stores with a token taken at store time, not the miss's: a computation that raced an invalidation is stored. */
export class FreshTokenBackend extends ObservedBackend {
  override set(key: string, entry: CacheEntryInput, token: unknown): StoreOutcome | Promise<StoreOutcome> {
    this.inner.abandon(token);
    const fresh = this.inner.begin(key);
    return isThenable(fresh) ? fresh.then(token => super.set(key, entry, token)) : super.set(key, entry, fresh);
  }
}

/** Ignores invalidations (answers as if they removed nothing). */
export class DeafBackend extends ObservedBackend {
  override invalidate(): InvalidationResult {
    return { removed: [] };
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Actors and the driver

export type WriteKind = 'invalidate' | 'decorator' | 'invalidateCall' | 'refreshCall';
export const WRITE_KINDS: readonly WriteKind[] = ['invalidate', 'decorator', 'invalidateCall', 'refreshCall'];

/** One service (or process) the driver sends calls and writes to. */
export interface Actor {
  readonly name: string;
  call(m: MethodName, args: readonly number[]): Promise<Node>;
  /**
   * Makes the write visible through this actor: for 'decorator' the write happens inside the method (`write`
   * is then not called by the driver). Resolves to the version acknowledged, or undefined when the
   * invalidation did not complete (pending, or it threw): nothing is acknowledged then.
   */
  write(kind: WriteKind, r: number): Promise<{ version: number | undefined; value?: Node }>;
}

/** An actor running in this process: a model instance bound to a service. */
export function localActor(name: string, service: CachingService, model: ModelInstance, ds: DataSource): Actor {
  const acknowledged = (result: unknown, v: number) => ((result as { pending?: boolean } | undefined)?.pending === true ? undefined : v);
  return {
    name,
    call: (m, args) => callModel(model, m, args),
    async write(kind, r) {
      switch (kind) {
        case 'decorator':
          return { version: await model.updateRow(r) };
        case 'invalidate': {
          const v = ds.write(r);
          return { version: acknowledged(await service.invalidate(`row:${r}`), v) };
        }
        case 'invalidateCall': {
          const v = ds.write(r);
          return { version: acknowledged(await service.invalidateCall(() => model.getRow(r)), v) };
        }
        case 'refreshCall': {
          const v = ds.write(r);
          try {
            return { version: v, value: await service.refreshCall(() => model.getRow(r)) };
          } catch {
            // The recomputation failed (the data source threw): the old entry stays, so invalidate instead.
            return { version: acknowledged(await service.invalidate(`row:${r}`), v) };
          }
        }
      }
    },
  };
}

/** The clock the driver moves: a FakeClock (advance at once) or real time (sleep). */
export interface DriverClock {
  now(): number;
  advance(ms: number): Promise<void>;
}

export interface RunOptions {
  readonly seed: number;
  readonly operations: number;
  /** Maximum calls and writes in flight at once. */
  readonly concurrency: number;
  readonly actors: readonly Actor[];
  readonly ds: DataSource;
  readonly clock: DriverClock;
  readonly expiry: ExpiryModel;
  /** maxStaleness of fail-safe methods (0 or absent: no fail-safe). */
  readonly failSafe?: Partial<Record<MethodName, number>>;
  readonly faults: Faults;
  /** Clock steps the driver may take (ms), e.g. around the TTLs. */
  readonly clockSteps: readonly number[];
  /** Probability per step of advancing the clock. @default 0.05 */
  readonly advanceRate?: number;
  /** Probability per step of a quiescent sweep. @default 0.003 */
  readonly sweepRate?: number;
  /** Real-time bound (ms) for settling once every read is released. @default 5000 */
  readonly settleMs?: number;
  /** Tolerance (ms) for served-past-window checks on clocks the model does not control. @default 0 */
  readonly slack?: number;
  readonly writeKinds?: readonly WriteKind[];
  /** Stop collecting after this many violations (the first ones are the interesting ones). @default 50 */
  readonly maxViolations?: number;
  /** Collects a line per step (calls, writes, releases, resolutions), to read how a violation came about. */
  readonly trace?: string[];
  /**
   * How long after a write's invalidation resolved a call through `reader` must see it, in ms. Absent: at
   * once, for every actor (one shared store). Processes that serve local copies kept fresh by messages (a
   * layered backend's L1) see another process's write within a propagation bound, their own at once.
   */
  readonly visibleAfter?: (writer: Actor, reader: Actor) => number;
  /** Lets time pass while settling, for work that waits on timers the driver controls. @default a macrotask turn */
  readonly idle?: () => Promise<void>;
  /** Runs before a sweep compares values, once everything settled: e.g. waits out the propagation bound. */
  readonly quiesce?: () => Promise<void>;
}

export interface RunReport {
  readonly seed: number;
  readonly operations: number;
  readonly calls: number;
  readonly writes: number;
  readonly failedCalls: number;
  readonly sweeps: number;
  readonly violations: Violation[];
  /** Violations per invariant (all of them, also past maxViolations). */
  readonly counts: Record<string, number>;
  /**
   * With `visibleAfter`: leaf values older than a write acknowledged before their call started, tolerated
   * because the write was still within its propagation bound (how often the bound was actually needed).
   */
  readonly withinBound: number;
  /** With `visibleAfter`: the longest such a tolerated value trailed the acknowledgement it predates, in ms. */
  readonly withinBoundMaxMs: number;
}

/** Acknowledged writes with when and by whom, for per-reader visibility (see {@link RunOptions.visibleAfter}). */
class AckLog {
  /** Per row: the highest version visible to every reader already (its bound elapsed for all of them). */
  readonly #settled: number[] = Array.from({ length: ROWS }, () => 1);
  /** Per row: acknowledgements still within some reader's bound, in resolution order. */
  readonly #recent: Array<Array<{ v: number; at: number; writer: Actor }>> = Array.from({ length: ROWS }, () => []);
  readonly #longest: number;

  constructor(
    actors: readonly Actor[],
    readonly visibleAfter: (writer: Actor, reader: Actor) => number,
  ) {
    this.#longest = Math.max(0, ...actors.flatMap(w => actors.map(r => visibleAfter(w, r))));
  }

  add(r: number, v: number, at: number, writer: Actor): void {
    this.#recent[r]!.push({ v, at, writer });
  }

  /** Per row: the highest version that a call through `reader` starting at `now` must see. */
  visibleTo(reader: Actor, now: number): number[] {
    return this.#recent.map((recent, r) => {
      while (recent.length > 0 && recent[0]!.at + this.#longest < now) this.#settled[r] = Math.max(this.#settled[r]!, recent.shift()!.v);
      let v = this.#settled[r]!;
      for (const ack of recent) if (ack.at + this.visibleAfter(ack.writer, reader) <= now) v = Math.max(v, ack.v);
      return v;
    });
  }

  /** When the first write of row r newer than version v was acknowledged (if still within some bound). */
  ackedAbove(r: number, v: number): number | undefined {
    let first: number | undefined;
    for (const ack of this.#recent[r]!) if (ack.v > v && (first === undefined || ack.at < first)) first = ack.at;
    return first;
  }

  /** Who acknowledged version v of row r (if still within some bound). */
  writerOf(r: number, v: number): string | undefined {
    return this.#recent[r]!.find(ack => ack.v === v)?.writer.name;
  }

  /** When version v of row r was acknowledged (if still within some bound). */
  ackedAt(r: number, v: number): number | undefined {
    return this.#recent[r]!.find(ack => ack.v === v)?.at;
  }
}

const macrotask = () => new Promise<void>(resolve => setImmediate(resolve));

/**
 * Runs the model: `operations` random steps (calls, writes, releases of held reads, clock advances, sweeps),
 * then a final sweep. Returns every violation found.
 */
export async function runModel(o: RunOptions): Promise<RunReport> {
  const rng = new Rng(o.seed ^ 0x9e3779b9);
  const violations: Violation[] = [];
  const counts: Record<string, number> = {};
  const report = (v: Violation) => {
    counts[v.invariant] = (counts[v.invariant] ?? 0) + 1;
    o.trace?.push(`VIOLATION [${v.invariant}] ${v.detail}`);
    if (violations.length < (o.maxViolations ?? 50)) violations.push(v);
  };
  o.expiry.report = report;
  const inflight = new Set<Promise<unknown>>();
  let calls = 0;
  let writes = 0;
  let failedCalls = 0;
  let sweeps = 0;
  let withinBound = 0;
  let withinBoundMaxMs = 0;
  const writeKinds = o.writeKinds ?? WRITE_KINDS;
  const ackLog = o.visibleAfter === undefined ? undefined : new AckLog(o.actors, o.visibleAfter);
  const ackedAt = (r: number, v: number, start: number): string => {
    const at = ackLog?.ackedAt(r, v);
    return at === undefined ? 'long before' : `at ${fmt(at, start)}`;
  };
  /** What a call through `actor` starting now must see: every acknowledged write, or those past their bound. */
  const ackedFor = (actor: Actor): number[] => ackLog?.visibleTo(actor, o.clock.now()) ?? o.ds.acked.slice();

  /** Checks one returned value against the call it answers, recursively. */
  const check = (node: Node, m: MethodName, args: readonly number[], ctx: { start: number; acked: readonly number[]; resolved?: readonly number[]; path: string; allowance: number; exact?: readonly number[] }): void => {
    const where = `${ctx.path}${m}(${args.join(',')})`;
    if (node === null || typeof node !== 'object' || node.m !== m || node.args.length !== args.length || node.args.some((a, i) => a !== args[i])) {
      report({ invariant: 'shape', detail: `${where} returned the value of ${node?.m}(${node?.args?.join(',')})` });
      return;
    }
    // A value computed from a fail-safe fallback below it is as old as that fallback's window allows (its
    // entry is stored already expired, and never served from the store: hits are checked by the expiry model).
    const allowance = Math.max(ctx.allowance, o.failSafe?.[m] ?? 0, failSafeBelow(node));
    const record = o.expiry.byId.get(node.id);
    if (record !== undefined && ctx.start > record.expiry + allowance + (o.slack ?? 0)) {
      report({
        invariant: allowance > 0 ? 'failsafe' : 'expiry',
        detail: `${where} (via a call started at ${fmt(ctx.start, ctx.start)}) served a value whose entry expired at ${fmt(record.expiry, ctx.start)}${allowance > 0 ? ` + maxStaleness ${allowance}` : ''}`,
      });
    }
    if (node.row !== undefined) {
      const { r, v } = node.row;
      if (m !== 'getRow' || r !== args[0]) report({ invariant: 'shape', detail: `${where} carries row ${r}` });
      if (v < ctx.acked[r]!) report({ invariant: 'ryw', detail: `${where} saw version ${v} of row ${r}; version ${ctx.acked[r]} was written and its invalidation resolved before the call started${ackLog ? ` (acknowledged ${ackedAt(r, ctx.acked[r]!, ctx.start)}, by ${ackLog.writerOf(r, ctx.acked[r]!) ?? 'an actor'}: its propagation bound had elapsed)` : ''}` });
      else if (ctx.resolved !== undefined && v < ctx.resolved[r]!) {
        withinBound++;
        const at = ackLog?.ackedAbove(r, v);
        if (at !== undefined) withinBoundMaxMs = Math.max(withinBoundMaxMs, ctx.start - at);
      }
      if (ctx.exact && ctx.exact[r] !== -1 && v !== ctx.exact[r]) report({ invariant: 'sweep', detail: `${where} at a quiet point saw version ${v} of row ${r}, current is ${ctx.exact[r]}: a stale value is stored` });
    }
    const expected = expectedParts(m, args);
    if (node.parts.length !== expected.length) {
      report({ invariant: 'shape', detail: `${where} has ${node.parts.length} parts, expected ${expected.length}` });
      return;
    }
    expected.forEach(([pm, pargs], i) => check(node.parts[i]!, pm, pargs, { ...ctx, path: `${where} → `, allowance }));
  };

  const failSafeBelow = (node: Node): number => {
    let most = 0;
    for (const part of node.parts ?? []) most = Math.max(most, o.failSafe?.[part.m] ?? 0, failSafeBelow(part));
    return most;
  };

  const track = (promise: Promise<unknown>): void => {
    inflight.add(promise);
    void promise.finally(() => inflight.delete(promise));
  };

  const log = (line: string) => o.trace?.push(`${o.clock.now() % 1_000_000} ${line}`);
  const leaves = (node: Node): string => (node?.row ? `${node.row.r}@${node.row.v}` : (node?.parts ?? []).map(leaves).join(' '));
  const startCall = (actor: Actor, m: MethodName, args: readonly number[], exact?: readonly number[]): Promise<void> => {
    const n = calls++;
    const ctx = { start: o.clock.now(), acked: ackedFor(actor), ...(ackLog ? { resolved: o.ds.acked.slice() } : {}), path: `${actor.name}: `, allowance: 0, ...(exact ? { exact } : {}) };
    log(`call#${n} ${actor.name} ${m}(${args.join(',')}) acked=[${ctx.acked.join(',')}] versions=[${o.ds.versions.join(',')}]`);
    const p = actor.call(m, args).then(
      node => {
        log(`call#${n} → ${leaves(node)}`);
        check(node, m, args, ctx);
      },
      (error: unknown) => {
        failedCalls++;
        if (!String((error as Error)?.message).startsWith('data source:')) report({ invariant: 'error', detail: `${ctx.path}${m}(${args.join(',')}) rejected: ${String(error)}` });
      },
    );
    track(p);
    return p;
  };

  const startWrite = (actor: Actor, kind: WriteKind, r: number): void => {
    const n = writes++;
    const ctx = { start: o.clock.now(), acked: ackedFor(actor), ...(ackLog ? { resolved: o.ds.acked.slice() } : {}), path: `${actor.name} ${kind}: `, allowance: 0 };
    log(`write#${n} ${actor.name} ${kind} row ${r} (now at ${o.ds.versions[r]! + (kind === 'decorator' ? 0 : 1)})`);
    const p = actor.write(kind, r).then(
      ({ version, value }) => {
        log(`write#${n} → acknowledged ${version}${value ? ` value ${leaves(value)}` : ''}`);
        if (value !== undefined) check(value, 'getRow', [r], ctx);
        if (version === undefined) o.ds.unacked[r]!++;
        else {
          o.ds.acknowledge(r, version);
          ackLog?.add(r, version, o.clock.now(), actor);
        }
      },
      (error: unknown) => {
        o.ds.unacked[r]!++;
        if (!String((error as Error)?.message).startsWith('data source:')) report({ invariant: 'error', detail: `${ctx.path}row ${r} rejected: ${String(error)}` });
      },
    );
    track(p);
  };

  /** Releases every held read (repeatedly: released computations read again) until nothing is in flight. */
  const settle = async (): Promise<void> => {
    const saved = o.ds.faults;
    o.ds.faults = { hold: 0, fail: 0 };
    const deadline = Date.now() + (o.settleMs ?? 5_000);
    while (inflight.size > 0 && Date.now() < deadline) {
      o.ds.releaseAll();
      await (o.idle?.() ?? Promise.race([macrotask(), new Promise(resolve => setTimeout(resolve, 5))]));
    }
    if (inflight.size > 0) {
      report({ invariant: 'hang', detail: `${inflight.size} calls did not settle within ${o.settleMs ?? 5_000} ms after every data read was released` });
      inflight.clear();
    }
    o.ds.faults = saved;
  };

  /** Awaits a promise, letting time pass meanwhile when the driver controls the timers (see `idle`). */
  const waitFor = async (promise: Promise<unknown>): Promise<void> => {
    if (o.idle === undefined) return void (await promise);
    let done = false;
    void promise.finally(() => (done = true));
    while (!done) await o.idle();
    await promise;
  };

  const sweep = async (): Promise<void> => {
    sweeps++;
    await settle();
    await o.quiesce?.();
    const saved = o.ds.faults;
    o.ds.faults = { hold: 0, fail: 0 };
    // Rows with an unacknowledged write may legitimately be stale: compare the others exactly.
    const exact = o.ds.versions.map((v, r) => (o.ds.unacked[r]! > 0 ? -1 : v));
    for (const actor of o.actors) {
      const work = allCalls().map(([m, args]) => startCall(actor, m, args, exact));
      await waitFor(Promise.all(work));
      // Sweep reads see current data: an entry they store is current, so a second pass checks the store again.
    }
    o.ds.faults = saved;
    // A row with an unacknowledged write: sweep reads now stored current data; from here on compare it again.
    for (let r = 0; r < ROWS; r++) if (o.ds.unacked[r]! > 0 && o.ds.acked[r]! >= o.ds.versions[r]!) o.ds.unacked[r] = 0;
  };

  o.ds.faults = o.faults;
  for (let step = 0; step < o.operations; step++) {
    if ((counts.hang ?? 0) > 0 && violations.length >= (o.maxViolations ?? 50)) break;
    const roll = rng.next();
    if (rng.chance(o.sweepRate ?? 0.003)) {
      await sweep();
    } else if (rng.chance(o.advanceRate ?? 0.05)) {
      // Clock moves only at a macrotask boundary, when no microtask chain is half-way (store times are exact).
      await macrotask();
      const ms = rng.pick(o.clockSteps);
      log(`advance ${ms} ms`);
      await o.clock.advance(ms);
    } else if (inflight.size >= o.concurrency || (roll < 0.25 && o.ds.held.length > 0)) {
      const held = o.ds.held.length;
      if (!o.ds.releaseOne()) await macrotask();
      else log(`release one of ${held} held reads`);
    } else if (roll < 0.82) {
      const m = rng.pick(METHODS);
      void startCall(rng.pick(o.actors), m, randomArgs(rng, m));
    } else {
      startWrite(rng.pick(o.actors), rng.pick(writeKinds), rng.int(ROWS));
    }
    // Yields of random kinds between steps: none, microtasks, or a macrotask turn.
    const y = rng.int(4);
    if (y === 1) for (let i = rng.int(5); i >= 0; i--) await Promise.resolve();
    else if (y === 2) await macrotask();
  }
  await sweep();
  o.ds.faults = { hold: 0, fail: 0 };
  return { seed: o.seed, operations: o.operations, calls, writes, failedCalls, sweeps, violations, counts, withinBound, withinBoundMaxMs };
}

/** A one-line summary of a report for assertion messages. */
export function summarize(r: RunReport): string {
  const counts = Object.entries(r.counts)
    .map(([k, n]) => `${k}=${n}`)
    .join(' ');
  return `seed ${r.seed}: ${r.calls} calls, ${r.writes} writes, ${r.failedCalls} failed by the data source, ${r.sweeps} sweeps; violations: ${counts || 'none'}\n${r.violations
    .slice(0, 8)
    .map(v => `  [${v.invariant}] ${v.detail}`)
    .join('\n')}`;
}
