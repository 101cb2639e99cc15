import type { BusReceiver, InvalidationBus } from '../backends/invalidation-bus.js';
import { CachingError, errors } from '../errors.js';

/** Options of {@link TestBusNetwork}. */
export interface TestBusNetworkOptions {
  /** Seed of the random choices (drops, duplicates, delays), so a failing run can be replayed. @default 1 */
  seed?: number;
  /** Heartbeat period reported by the endpoints, in ms. @default 50 */
  heartbeatMs?: number;
}

/** Faults applied to each delivery of a message to one receiver (its sender's own echo included). */
export interface TestBusFaults {
  /** Probability that a delivery is lost. @default 0 */
  drop?: number;
  /** Probability that a delivery happens twice. @default 0 */
  duplicate?: number;
  /** Delay of each delivery in ms: a number, or `[min, max]` drawn at random (which reorders messages). @default 0 */
  delayMs?: number | readonly [number, number];
  /** Lose only deliveries whose payload this returns true for (after `drop`); e.g. only invalidations. */
  dropIf?: (payload: string, from: TestBus, to: TestBus) => boolean;
}

/**
 * An in-process {@link InvalidationBus} network for tests: endpoints (`connect()`) publish to one another, as
 * processes do over Redis pub/sub, and the network can lose, delay, duplicate, reorder and partition messages,
 * cut an endpoint off, make its publishes fail, or inject foreign payloads. Deliveries are asynchronous (a
 * microtask, or a timer when delayed), like a real transport's. No vitest needed.
 *
 * @example
 * const network = new TestBusNetwork({ heartbeatMs: 20 });
 * const a = new LayeredBackend({ l2: shared, bus: network.connect() });
 * const b = new LayeredBackend({ l2: shared, bus: network.connect() });
 * network.faults({ drop: 0.1, delayMs: [0, 5] });
 */
export class TestBusNetwork {
  /** The heartbeat period the endpoints report, in ms (the `heartbeatMs` option). */
  readonly heartbeatMs: number;
  readonly #endpoints = new Set<TestBus>();
  #faults: Required<Omit<TestBusFaults, 'dropIf'>> & { dropIf: TestBusFaults['dropIf'] | undefined } = { dropIf: undefined, drop: 0, duplicate: 0, delayMs: 0 };
  #groups: Map<TestBus, number> | undefined;
  #held: (() => void)[] | undefined;
  #random: () => number;
  /** Deliveries lost so far (drops, partitions and cut-off endpoints). */
  dropped = 0;
  /** Deliveries made so far (duplicates count twice). */
  delivered = 0;

  constructor(options: TestBusNetworkOptions = {}) {
    this.heartbeatMs = options.heartbeatMs ?? 50;
    if (!(this.heartbeatMs > 0 && Number.isFinite(this.heartbeatMs))) throw new CachingError(errors.E_INVALID_OPTION, `TestBusNetwork: option heartbeatMs must be a positive number of ms, got ${String(options.heartbeatMs)}.`);
    this.#random = mulberry32(options.seed ?? 1);
  }

  /** A new endpoint (one per process, or per layered backend). */
  connect(name = `bus-${this.#endpoints.size + 1}`): TestBus {
    const bus = new TestBus(this, name);
    this.#endpoints.add(bus);
    return bus;
  }

  /** Sets the faults applied from now on (replacing the previous ones); `faults()` with no argument heals them. */
  faults(faults: TestBusFaults = {}): this {
    this.#faults = { drop: faults.drop ?? 0, duplicate: faults.duplicate ?? 0, delayMs: faults.delayMs ?? 0, dropIf: faults.dropIf };
    return this;
  }

  /**
   * Splits the endpoints into groups that hear each other but not the other groups (each still hears its own
   * messages). Endpoints not listed form one more group. `heal()` joins them again.
   */
  partition(...groups: readonly TestBus[][]): this {
    this.#groups = new Map();
    groups.forEach((group, i) => group.forEach(bus => this.#groups!.set(bus, i + 1)));
    return this;
  }

  /** Ends a partition and the faults. */
  heal(): this {
    this.#groups = undefined;
    return this.faults();
  }

  /** Holds every delivery from now on until {@link release} (to interleave deterministically). */
  hold(): this {
    this.#held ??= [];
    return this;
  }

  /** Delivers what was held, in order, and stops holding. */
  release(): this {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const deliver of held) deliver();
    return this;
  }

  /** Delivers a payload to every connected endpoint as if someone else had published it (a foreign message, say). */
  inject(payload: string): void {
    for (const to of this.#endpoints) this.#deliver(payload, undefined, to);
  }

  /** @internal */
  detach(bus: TestBus): void {
    this.#endpoints.delete(bus);
  }

  /** @internal Sends a published payload to every endpoint (the sender included), through the faults. */
  send(payload: string, from: TestBus): void {
    for (const to of this.#endpoints) this.#deliver(payload, from, to);
  }

  #deliver(payload: string, from: TestBus | undefined, to: TestBus): void {
    if (!to.listening) return;
    const faults = this.#faults;
    const lost =
      (from !== undefined && this.#groups !== undefined && from !== to && (this.#groups.get(from) ?? 0) !== (this.#groups.get(to) ?? 0)) ||
      (faults.drop > 0 && this.#random() < faults.drop) ||
      (from !== undefined && faults.dropIf?.(payload, from, to) === true);
    if (lost) {
      this.dropped++;
      return;
    }
    const times = faults.duplicate > 0 && this.#random() < faults.duplicate ? 2 : 1;
    for (let i = 0; i < times; i++) {
      const delay = typeof faults.delayMs === 'number' ? faults.delayMs : faults.delayMs[0] + this.#random() * (faults.delayMs[1] - faults.delayMs[0]);
      const deliver = (): void => {
        if (!to.listening) return;
        this.delivered++;
        to.receive(payload);
      };
      const schedule = (): void => {
        if (delay > 0) setTimeout(deliver, delay);
        else queueMicrotask(deliver);
      };
      if (this.#held !== undefined) this.#held.push(schedule);
      else schedule();
    }
  }
}

/** One endpoint of a {@link TestBusNetwork}: an {@link InvalidationBus} that a layered backend uses. */
export class TestBus implements InvalidationBus {
  readonly name: string;
  readonly heartbeatMs: number;
  readonly #network: TestBusNetwork;
  #receivers: readonly BusReceiver[] = [];
  #connected = true;
  #publishFailures = 0;
  #stalled = false;
  #disposed = false;
  /** Payloads this endpoint published (accepted or not), for assertions. */
  readonly published: string[] = [];

  constructor(network: TestBusNetwork, name: string) {
    this.#network = network;
    this.name = name;
    this.heartbeatMs = network.heartbeatMs;
  }

  /** @internal True while deliveries reach this endpoint. */
  get listening(): boolean {
    return this.#connected && !this.#stalled && !this.#disposed && this.#receivers.length > 0;
  }

  publish(payload: string): Promise<void> {
    this.published.push(payload);
    if (this.#disposed) return Promise.reject(new CachingError(errors.E_DISPOSED, `TestBus ${this.name}: publish after dispose().`));
    if (!this.#connected) return Promise.reject(new CachingError(errors.E_BACKEND, `TestBus ${this.name}: disconnected (injected).`));
    if (this.#publishFailures > 0) {
      this.#publishFailures--;
      return Promise.reject(new CachingError(errors.E_BACKEND, `TestBus ${this.name}: publish failed (injected).`));
    }
    this.#network.send(payload, this);
    return Promise.resolve();
  }

  subscribe(receiver: BusReceiver): () => void {
    this.#receivers = [...this.#receivers, receiver];
    if (this.#connected && !this.#disposed) queueMicrotask(() => this.#receivers.includes(receiver) && this.#connected && receiver.onConnection('up'));
    return () => {
      this.#receivers = this.#receivers.filter(r => r !== receiver);
    };
  }

  /** Makes the next `times` publishes reject (`Infinity`: until `failPublishes(0)`). */
  failPublishes(times = Infinity): this {
    this.#publishFailures = times;
    return this;
  }

  /** Cuts this endpoint off, as a lost connection: it reports `down`, hears nothing and cannot publish. */
  disconnect(): this {
    if (!this.#connected) return this;
    this.#connected = false;
    for (const r of this.#receivers) r.onConnection('down');
    return this;
  }

  /** Connects it again; `up` is reported asynchronously, as a resubscription would be. */
  reconnect(): this {
    if (this.#connected) return this;
    this.#connected = true;
    queueMicrotask(() => {
      if (!this.#connected) return;
      for (const r of this.#receivers) r.onConnection('up');
    });
    return this;
  }

  /**
   * Cuts deliveries to this endpoint *silently* (no `down` reported), as a stalled or half-open subscription
   * would; publishes still succeed. `resume()` ends it.
   */
  stall(): this {
    this.#stalled = true;
    return this;
  }

  /** Ends a {@link stall}. */
  resume(): this {
    this.#stalled = false;
    return this;
  }

  /** @internal */
  receive(payload: string): void {
    for (const r of this.#receivers) {
      try {
        r.onMessage(payload);
      } catch {
        // the receiver's problem
      }
    }
  }

  async dispose(): Promise<void> {
    this.#disposed = true;
    this.#receivers = [];
    this.#network.detach(this);
  }
}

/** A small seeded PRNG (mulberry32), so that fault injection is reproducible. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
