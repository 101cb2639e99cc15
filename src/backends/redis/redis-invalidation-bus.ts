import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { CachingError, errors } from '../../errors.js';
import { checkKnownOptions, optionNames } from '../../options-check.js';
import type { BusReceiver, InvalidationBus } from '../invalidation-bus.js';
import { CallGuard } from '../resilience/call-guard.js';

/** Options of {@link RedisInvalidationBus}. */
export interface RedisInvalidationBusOptions {
  /**
   * The application's ioredis client: `new Redis(…)` or `new Cluster(…)`. The bus publishes through it and
   * derives its own subscriber connection from it; it never closes it.
   */
  client: Redis | Cluster;
  /**
   * The pub/sub channel. Every process of one deployment uses the same one; deployments that share a Redis use
   * different ones. Taken literally: the client's `keyPrefix` does not apply to channels.
   * @default 'aspect-cache:invalidations'
   */
  channel?: string;
  /**
   * How often each process sends a heartbeat, in ms (see {@link InvalidationBus.heartbeatMs}): the staleness
   * bound when messages are lost silently.
   * @default 1000
   */
  heartbeatMs?: number;
  /**
   * How long `publish` waits for Redis to accept a payload before it rejects with `E_TIMEOUT`, in ms. A publish
   * that timed out while the client was reconnecting may still be sent later from ioredis' offline queue; the
   * protocol's sequence numbers make a late payload harmless.
   * @default 1000
   */
  publishTimeoutMs?: number;
}

const OPTION_NAMES = optionNames({ client: 0, channel: 0, heartbeatMs: 0, publishTimeoutMs: 0 } satisfies Record<keyof RedisInvalidationBusOptions, 0>);

const WHERE = 'RedisInvalidationBus';

/**
 * A SUBSCRIBE the server does not confirm within this time means a connection that is open but not working (a
 * half-open socket, a server stuck in a long script): it is dropped and opened again.
 */
const SUBSCRIBE_CONFIRM_TIMEOUT_MS = 10_000;

/** How long `dispose` waits for UNSUBSCRIBE and QUIT before it simply drops the connection. */
const CLOSE_TIMEOUT_MS = 1_000;

/**
 * Reconnection attempts to one cluster node before the bus moves its subscriber to another node: a node that
 * was removed or failed over may never come back, while any other node delivers the same broadcast.
 */
const CLUSTER_NODE_ATTEMPTS = 3;

/** One `subscribe` call: the same receiver object subscribed twice is two subscriptions. */
interface Subscription {
  readonly receiver: BusReceiver;
}

/**
 * The {@link InvalidationBus} of Redis pub/sub (classic `PUBLISH`/`SUBSCRIBE`, one channel), for standalone
 * Redis and Redis Cluster. It carries strings only: the layered backend adds the protocol on top.
 *
 * **What it opens, who owns what.** The `client` is the application's: the bus publishes through it and never
 * closes it. A subscribed connection cannot send other commands, so on the first `subscribe()` the bus opens one
 * subscriber connection of its own, derived from the client (same address, credentials, TLS), and closes it on
 * `dispose()`. Removing the last receiver keeps that connection open until `dispose()`, so that a receiver coming
 * back (a layered backend rebuilding its state) is live again at once.
 *
 * **Connection state.** `'up'` means the server confirmed the SUBSCRIBE on the current connection: a payload
 * published after `'up'` is delivered. `'down'` is reported as soon as that connection errs, closes or starts
 * reconnecting. The bus resubscribes itself on every reconnection (ioredis' `autoResubscribe` is off for its
 * connection, because its resubscription cannot be observed) and reports `'up'` again once the server confirms.
 * If ioredis gives up reconnecting, the bus opens a new connection, with a back-off, until it is disposed.
 *
 * **On the wire.** One `PUBLISH <channel> <payload>` per publish, the payload verbatim, and one `SUBSCRIBE <channel>`
 * per subscriber connection: whatever publishes a string on the channel reaches the receivers, which ignore what
 * they do not understand.
 *
 * **Redis Cluster.** Classic pub/sub is broadcast to every node of a cluster, so the subscriber is a plain
 * connection to one node (a master when one is known), duplicated from that node of the application's cluster
 * client; ioredis' own cluster subscriber is not used because it hides its connection's state. After a few
 * failed reconnections to that node, the bus moves to another. Publishes of one bus go through one master (the
 * cluster client would pick a random master per PUBLISH, and two masters forward to the subscriber's node over
 * different links, which reorders a sender's payloads); the bus moves to another master when a publish fails.
 *
 * @example
 * const bus = new RedisInvalidationBus({ client: redis, channel: 'shop:invalidations' });
 */
export class RedisInvalidationBus implements InvalidationBus {
  readonly name = 'redis';
  readonly heartbeatMs: number;
  /** The pub/sub channel (see {@link RedisInvalidationBusOptions.channel}). */
  readonly channel: string;

  readonly #client: Redis | Cluster;
  readonly #isCluster: boolean;
  readonly #publishTimeoutMs: number;
  readonly #guard: CallGuard;
  readonly #subscriptions = new Set<Subscription>();
  /** The current subscriber connection (undefined before the first subscribe, between connections, after dispose). */
  #subscriber: Redis | undefined;
  /** The server confirmed the SUBSCRIBE on the current connection and it has not been lost since. */
  #live = false;
  /** Bumped whenever a confirmation in flight stops counting (connection lost, new attempt, dispose). */
  #attempt = 0;
  #confirmTimer: ReturnType<typeof setTimeout> | undefined;
  #reopenTimer: ReturnType<typeof setTimeout> | undefined;
  /** Consecutive failures since the last confirmed subscription, for the back-off. */
  #failures = 0;
  /** On a cluster, the master this bus publishes through. */
  #publisher: Redis | undefined;
  #disposed: Promise<void> | undefined;

  constructor(options: RedisInvalidationBusOptions) {
    if (options === null || typeof options !== 'object') throw new CachingError(errors.E_INVALID_OPTION, `${WHERE}: options must be an object with a client.`);
    checkKnownOptions(WHERE, options, OPTION_NAMES);
    const { client, channel = 'aspect-cache:invalidations', heartbeatMs = 1_000, publishTimeoutMs = 1_000 } = options;
    if (client === null || typeof client !== 'object' || typeof client.duplicate !== 'function' || typeof client.publish !== 'function') {
      throw new CachingError(errors.E_INVALID_OPTION, `${WHERE}: option client must be an ioredis Redis or Cluster instance.`);
    }
    if (typeof channel !== 'string' || channel === '') throw new CachingError(errors.E_INVALID_OPTION, `${WHERE}: option channel must be a non-empty string, got ${describe(channel)}.`);
    positive('heartbeatMs', heartbeatMs);
    positive('publishTimeoutMs', publishTimeoutMs);
    this.#client = client;
    this.#isCluster = (client as { isCluster?: boolean }).isCluster === true;
    this.channel = channel;
    this.heartbeatMs = heartbeatMs;
    this.#publishTimeoutMs = publishTimeoutMs;
    this.#guard = new CallGuard({ where: WHERE, remote: 'Redis', timeoutMs: publishTimeoutMs });
  }

  /**
   * PUBLISHes the payload on the channel. Resolves once Redis accepted it (delivery to subscribers is
   * asynchronous); rejects with `E_TIMEOUT` after `publishTimeoutMs`, or with `E_BACKEND` when the client
   * refused or failed the command.
   */
  publish(payload: string): Promise<void> {
    if (this.#disposed) return Promise.reject(new CachingError(errors.E_DISPOSED, `${WHERE}: publish() after dispose(); create a new bus.`));
    const target = this.#publishTarget();
    // The shared call guard bounds the wait (one deadline sweep for every call in flight, as the backend's).
    return this.#guard.call(() => target.publish(this.channel, payload)).then(
      () => undefined,
      (error: unknown) => {
        this.#dropPublisher(target);
        if (error instanceof CachingError && error.code === errors.E_TIMEOUT) {
          throw new CachingError(errors.E_TIMEOUT, `${WHERE}: Redis did not accept a publish on '${this.channel}' within ${this.#publishTimeoutMs} ms (option publishTimeoutMs).`);
        }
        const cause = error instanceof CachingError && error.cause !== undefined ? error.cause : error;
        throw new CachingError(errors.E_BACKEND, `${WHERE}: publish on '${this.channel}' failed: ${messageOf(cause)}`, { cause });
      },
    );
  }

  /**
   * Adds a receiver (see {@link InvalidationBus.subscribe}). The first one opens the subscriber connection; one
   * added while the subscription is live is told `'up'` right after this call returns.
   */
  subscribe(receiver: BusReceiver): () => void {
    if (this.#disposed) throw new CachingError(errors.E_DISPOSED, `${WHERE}: subscribe() after dispose(); create a new bus.`);
    const subscription: Subscription = { receiver };
    this.#subscriptions.add(subscription);
    if (this.#subscriber === undefined && this.#reopenTimer === undefined) {
      this.#open();
    } else if (this.#live) {
      queueMicrotask(() => {
        if (this.#live && this.#subscriptions.has(subscription)) tell(subscription, 'up');
      });
    }
    return () => {
      this.#subscriptions.delete(subscription);
    };
  }

  /**
   * Stops delivering, UNSUBSCRIBEs and QUITs the subscriber connection (dropping it if Redis does not answer
   * within a second). Receivers are not told `'down'`. The application's client stays open. Idempotent.
   */
  dispose(): Promise<void> {
    this.#disposed ??= this.#close();
    return this.#disposed;
  }

  async #close(): Promise<void> {
    clearTimeout(this.#reopenTimer);
    clearTimeout(this.#confirmTimer);
    this.#reopenTimer = undefined;
    this.#attempt++;
    this.#live = false;
    this.#subscriptions.clear();
    this.#publisher = undefined;
    const subscriber = this.#subscriber;
    this.#subscriber = undefined; // its events are ignored from now on
    if (subscriber === undefined) return;
    if (subscriber.status === 'ready') {
      await settlesWithin(subscriber.unsubscribe(this.channel), CLOSE_TIMEOUT_MS);
      await settlesWithin(subscriber.quit(), CLOSE_TIMEOUT_MS);
    }
    if (subscriber.status !== 'end') subscriber.disconnect();
  }

  /** Opens a subscriber connection; it subscribes on each 'ready'. */
  #open(): void {
    this.#reopenTimer = undefined;
    if (this.#disposed) return;
    const subscriber = this.#newConnection();
    if (subscriber === undefined) {
      this.#scheduleReopen(); // a cluster client that knows no node yet
      return;
    }
    this.#subscriber = subscriber;
    subscriber.on('ready', () => this.#confirm(subscriber));
    subscriber.on('message', (channel: string, message: unknown) => {
      if (subscriber === this.#subscriber && channel === this.channel) this.#deliver(message);
    });
    subscriber.on('close', () => this.#lost(subscriber));
    subscriber.on('reconnecting', () => this.#lost(subscriber));
    subscriber.on('error', (error: unknown) => this.#failed(subscriber, error));
    subscriber.on('end', () => this.#ended(subscriber));
    // A failed connection attempt also arrives as 'error' and is retried by ioredis' retry strategy.
    subscriber.connect().catch(() => undefined);
  }

  /** A connection of the bus's own: autoResubscribe off (the bus resubscribes itself, so it can see the confirmation). */
  #newConnection(): Redis | undefined {
    const overrides: Partial<RedisOptions> = { lazyConnect: true, autoResubscribe: false };
    if (!this.#isCluster) return (this.#client as Redis).duplicate(overrides);
    const cluster = this.#client as Cluster;
    const node = sample(cluster.nodes('master')) ?? sample(cluster.nodes('all'));
    return node?.duplicate({
      ...overrides,
      readOnly: false,
      retryStrategy: (attempts: number) => (attempts < CLUSTER_NODE_ATTEMPTS ? attempts * 100 : null),
    });
  }

  /** SUBSCRIBEs on a (re)connected subscriber and reports 'up' once the server confirms. */
  #confirm(subscriber: Redis): void {
    if (subscriber !== this.#subscriber) return;
    const attempt = ++this.#attempt;
    clearTimeout(this.#confirmTimer);
    this.#confirmTimer = setTimeout(() => {
      if (attempt !== this.#attempt) return;
      this.#report(new CachingError(errors.E_TIMEOUT, `${WHERE}: Redis did not confirm SUBSCRIBE '${this.channel}' within ${SUBSCRIBE_CONFIRM_TIMEOUT_MS} ms; reconnecting.`), 'subscribe');
      subscriber.disconnect(true);
    }, SUBSCRIBE_CONFIRM_TIMEOUT_MS);
    this.#confirmTimer.unref?.();
    subscriber.subscribe(this.channel).then(
      () => {
        if (attempt !== this.#attempt) return;
        clearTimeout(this.#confirmTimer);
        this.#failures = 0;
        this.#setLive(true);
      },
      (error: unknown) => {
        if (attempt !== this.#attempt) return;
        clearTimeout(this.#confirmTimer);
        this.#report(error, 'subscribe');
        // Refused on a working connection (an ACL without access to the channel, say): ask again later.
        const retry = setTimeout(() => {
          if (attempt === this.#attempt && subscriber.status === 'ready') this.#confirm(subscriber);
        }, this.#backOff());
        retry.unref?.();
      },
    );
  }

  /** The connection closed or is reconnecting: the subscription is gone until the next confirmation. */
  #lost(subscriber: Redis): void {
    if (subscriber !== this.#subscriber) return;
    this.#attempt++;
    clearTimeout(this.#confirmTimer);
    this.#setLive(false);
  }

  #failed(subscriber: Redis, error: unknown): void {
    if (subscriber !== this.#subscriber) return; // a replaced or disposed connection: nobody to tell
    this.#report(error, 'subscriber connection');
    if (!this.#live) return;
    this.#lost(subscriber);
    // Usually 'close' follows at once; if the connection stays up, the server has to confirm the subscription again.
    if (subscriber.status === 'ready') this.#confirm(subscriber);
  }

  /** ioredis stopped reconnecting this connection: a new one, after a back-off. */
  #ended(subscriber: Redis): void {
    if (subscriber !== this.#subscriber) return;
    this.#lost(subscriber);
    this.#subscriber = undefined;
    this.#scheduleReopen();
  }

  #scheduleReopen(): void {
    if (this.#disposed || this.#reopenTimer !== undefined) return;
    this.#reopenTimer = setTimeout(() => this.#open(), this.#backOff());
    this.#reopenTimer.unref?.();
  }

  /** 100 ms, doubling per consecutive failure, at most 2 s. */
  #backOff(): number {
    return Math.min(100 * 2 ** this.#failures++, 2_000);
  }

  #setLive(live: boolean): void {
    if (this.#live === live) return;
    this.#live = live;
    const state = live ? 'up' : 'down';
    for (const subscription of this.#subscriptions) tell(subscription, state);
  }

  #deliver(message: unknown): void {
    const payload = typeof message === 'string' ? message : String(message);
    for (const subscription of this.#subscriptions) {
      try {
        subscription.receiver.onMessage(payload);
      } catch (error) {
        blame(subscription, error, 'onMessage');
      }
    }
  }

  #report(error: unknown, operation: string): void {
    for (const subscription of this.#subscriptions) {
      try {
        subscription.receiver.onError?.(error, operation);
      } catch {
        // A receiver's failure is the receiver's.
      }
    }
  }

  /** The client itself, or on a cluster the master this bus keeps publishing through (see the class notes). */
  #publishTarget(): Redis | Cluster {
    if (!this.#isCluster) return this.#client;
    if (this.#publisher !== undefined && this.#publisher.status !== 'end') return this.#publisher;
    // A cluster client that has not discovered its nodes yet queues the PUBLISH until it has.
    this.#publisher = sample((this.#client as Cluster).nodes('master'));
    return this.#publisher ?? this.#client;
  }

  /** A publish through `target` failed: the next one picks a master again (this one may be gone). */
  #dropPublisher(target: Redis | Cluster): void {
    if (target === this.#publisher) this.#publisher = undefined;
  }
}

function tell(subscription: Subscription, state: 'up' | 'down'): void {
  try {
    subscription.receiver.onConnection(state);
  } catch (error) {
    blame(subscription, error, 'onConnection');
  }
}

/** A receiver threw: tell that receiver (its own failure, not the transport's), never anyone else. */
function blame(subscription: Subscription, error: unknown, operation: string): void {
  try {
    subscription.receiver.onError?.(error, operation);
  } catch {
    // Nothing more to do for a receiver that fails at reporting its failure.
  }
}

function sample<T>(items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[Math.floor(Math.random() * items.length)];
}

/** Whether `promise` settled (either way) within `ms`; never rejects. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<false>(resolve => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function positive(option: string, value: unknown): void {
  if (!(typeof value === 'number' && value > 0 && Number.isFinite(value))) {
    throw new CachingError(errors.E_INVALID_OPTION, `${WHERE}: option ${option} must be a positive number of milliseconds, got ${describe(value)}.`);
  }
}

function describe(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
