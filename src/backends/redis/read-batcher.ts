import type { Cluster, Redis } from 'ioredis';
import { CachingError, errors } from '../../errors.js';
import type { CacheLookup } from '../backend.js';
import type { CallGuard } from '../resilience/call-guard.js';
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { HIT_FIELD } from './entry-codec.js';
import { encodeKey, entryKey, sequenceKey } from './key-schema.js';

/** What the batcher needs from RedisBackend: its connection and resilience, and what a reply means. */
export interface ReadBatcherOptions {
  readonly client: Redis | Cluster;
  readonly isCluster: boolean;
  readonly partitions: number;
  /** Timeout of a lookup (of a batch's round trip). */
  readonly timeoutMs: number;
  /** The backend's guard: a batch registers its deadline there; a lookup sent alone is a guarded call. */
  readonly guard: CallGuard;
  /** The guard's breaker: a batch records one outcome per round trip in it. */
  readonly breaker: CircuitBreaker;
  /** The local clock (when a pipeline was sent). */
  readonly now: () => number;
  /**
   * What an entry's `h` field (or its absence) means for a lookup, with what the partition's generation and the
   * server's clock were just before the field was read (`clock`, absent when the lookup went alone): a miss takes
   * its token from it instead of asking again. May throw: the lookup then fails.
   */
  readonly interpret: (base: string, key: string, packed: string | null | undefined, clock?: PartitionClock) => CacheLookup | Promise<CacheLookup>;
  /** The lookup of an entry key that holds another type (the server answered WRONGTYPE). */
  readonly foreign: (base: string, key: string, error: unknown) => Promise<CacheLookup>;
}

/**
 * The partition's generation (`GET` of its sequence key: a decimal string, or null) and the server's `TIME`,
 * read in the lookup's pipeline before its HGET, and when the pipeline was sent (local ms).
 */
export interface PartitionClock {
  readonly generation: unknown;
  readonly time: unknown;
  readonly sentAt: number;
}

/** A lookup waiting for this tick's batch of its partition. */
interface PendingRead {
  readonly base: string;
  readonly key: string;
  readonly resolve: (lookup: CacheLookup | PromiseLike<CacheLookup>) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Sends RedisBackend's lookups. With a closed circuit, the lookups made during one tick are sent together: one
 * pipeline per partition (one slot, so valid on a cluster), written to the socket at once: `GET` of the
 * partition's generation, `TIME`, then one HGET per lookup. A hit is one round trip; a miss has its token in
 * the same round trip (the generation and the time were read before its entry), so a miss and its store take
 * two. Under concurrency, a write per batch instead of a write per lookup is what keeps a hit's CPU cost close
 * to a raw GET's, and the two extra commands are shared by the batch. One deadline and one breaker outcome per
 * round trip. Otherwise (and for lookups a cluster redirected) each lookup is sent alone (a plain HGET, whose
 * miss asks for its token separately), through the breaker.
 */
export class ReadBatcher {
  readonly #client: Redis | Cluster;
  readonly #isCluster: boolean;
  readonly #timeoutMs: number;
  readonly #guard: CallGuard;
  readonly #breaker: CircuitBreaker;
  readonly #interpret: ReadBatcherOptions['interpret'];
  readonly #foreign: ReadBatcherOptions['foreign'];
  readonly #now: () => number;
  /** Lookups of the current tick not yet sent, per partition. */
  readonly #reads: Array<PendingRead[] | undefined>;
  #flushScheduled = false;

  constructor(options: ReadBatcherOptions) {
    this.#client = options.client;
    this.#isCluster = options.isCluster;
    this.#timeoutMs = options.timeoutMs;
    this.#guard = options.guard;
    this.#breaker = options.breaker;
    this.#interpret = options.interpret;
    this.#foreign = options.foreign;
    this.#now = options.now;
    this.#reads = new Array<PendingRead[] | undefined>(options.partitions).fill(undefined);
  }

  /** Looks up `key`, whose partition is `partition` with key base `base`. */
  get(partition: number, base: string, key: string): Promise<CacheLookup> {
    if (this.#breaker.state !== 'closed') return this.#lookupAlone(base, key);
    // Closed circuit (the normal case): the lookup joins this tick's batch of its partition (see #flushReads).
    return new Promise<CacheLookup>((resolve, reject) => {
      const batch = this.#reads[partition];
      if (batch === undefined) this.#reads[partition] = [{ base, key, resolve, reject }];
      else batch.push({ base, key, resolve, reject });
      if (!this.#flushScheduled) {
        this.#flushScheduled = true;
        process.nextTick(this.#flushReads);
      }
    });
  }

  /** Sends the lookups made during one tick. */
  readonly #flushReads = (): void => {
    this.#flushScheduled = false;
    const reads = this.#reads;
    // The circuit may have opened since these lookups were queued: they then take the guarded path.
    const closed = this.#breaker.state === 'closed';
    for (let partition = 0; partition < reads.length; partition++) {
      const batch = reads[partition];
      if (batch === undefined) continue;
      reads[partition] = undefined;
      if (closed) this.#sendReads(batch);
      else for (const read of batch) this.#lookupAlone(read.base, read.key).then(read.resolve, read.reject);
    }
  };

  #sendReads(batch: PendingRead[]): void {
    const pending = this.#guard.deadline(this.#timeoutMs, error => this.#failReads(batch, error));
    const onError = (error: unknown): void => {
      if (this.#guard.settle(pending)) this.#failReads(batch, this.#guard.failure(error));
    };
    // This runs in a nextTick callback: a synchronous exception must become the lookups' error, never an uncaught one.
    try {
      const base = batch[0]!.base;
      const pipeline = this.#client.pipeline();
      pipeline.get(sequenceKey(base));
      pipeline.time();
      for (const read of batch) pipeline.hget(entryKey(read.base, encodeKey(read.key)), HIT_FIELD);
      const sentAt = this.#now();
      pipeline.exec().then(replies => {
        if (this.#guard.settle(pending)) this.#answerReads(batch, replies, pipeline, sentAt);
      }, onError);
    } catch (error) {
      onError(error);
    }
  }

  /** A batch that got no answer (error or timeout): every lookup fails, and the round trip counts once against the circuit. */
  #failReads(batch: readonly PendingRead[], error: unknown): void {
    for (const read of batch) read.reject(error);
    this.#breaker.recordFailure();
  }

  #answerReads(batch: readonly PendingRead[], replies: Array<[error: Error | null, reply: unknown]> | null, pipeline: object, sentAt: number): void {
    if (replies === null || replies.length !== batch.length + 2) {
      this.#failReads(batch, new CachingError(errors.E_BACKEND, `RedisBackend: a pipeline of ${batch.length} lookups returned ${replies === null ? 'no replies' : `${replies.length - 2} replies`}.`));
      return;
    }
    // On a cluster, ioredis answers a redirection inside a pipeline by sending the whole pipeline again to the
    // node it names (ioredis#2075): during a slot migration, the keys not yet moved then come back empty. After
    // a redirection, lookups that came back empty or redirected are asked again one by one (a single command
    // follows its own redirection). ioredis marks a pipeline it re-sent with `leftRedirections`.
    const redirected = this.#isCluster && ((pipeline as { leftRedirections?: unknown }).leftRedirections !== undefined || replies.some(([error]) => isRedirection(error)));
    const [generationError, generation] = replies[0]!;
    const [timeError, time] = replies[1]!;
    // Without both (an error, a redirection), a miss asks for its token on its own.
    const clock = redirected || generationError !== null || timeError !== null ? undefined : { generation, time, sentAt };
    let failed = 0;
    for (let i = 0; i < batch.length; i++) {
      const [error, packed] = replies[i + 2]!;
      const read = batch[i]!;
      if (redirected && (isRedirection(error) || (error === null && (packed === null || packed === undefined)))) this.#lookupAlone(read.base, read.key).then(read.resolve, read.reject);
      else if (error !== null) {
        // A key of another type in the entry's place: the server answered; a miss, and the key is replaced.
        if (isWrongType(error)) read.resolve(this.#foreign(read.base, read.key, error));
        else {
          failed++;
          read.reject(this.#guard.failure(error));
        }
      } else this.#answer(read, packed as string | null, clock);
    }
    // The server answered: one key's error (a foreign value of another type, say) is that lookup's failure,
    // not a sign of a failing Redis. Only a batch of nothing but errors counts against the circuit.
    if (failed === batch.length) this.#breaker.recordFailure();
    else this.#breaker.recordSuccess();
  }

  /** One lookup on its own, through the circuit breaker and with its own timeout. */
  #lookupAlone(base: string, key: string): Promise<CacheLookup> {
    return this.#guard.call(
      () => this.#client.hget(entryKey(base, encodeKey(key)), HIT_FIELD).catch((error: unknown) => (isWrongType(error) ? (error as Error) : Promise.reject(error))),
      this.#timeoutMs,
      packed => (packed instanceof Error ? this.#foreign(base, key, packed) : this.#interpret(base, key, packed)),
    );
  }

  #answer(read: PendingRead, packed: string | null | undefined, clock: PartitionClock | undefined): void {
    try {
      read.resolve(this.#interpret(read.base, read.key, packed, clock));
    } catch (error) {
      read.reject(error);
    }
  }
}

/** Cluster replies that mean "not here, or not now": the lookup is worth asking again on its own. */
function isRedirection(error: Error | null | undefined): boolean {
  return error != null && /^(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(error.message);
}

/** A reply meaning the key holds another type than the command expects (a foreign or corrupt key). */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}
