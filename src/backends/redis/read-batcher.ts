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
  /**
   * The LOOKUP script as defined on the client (see scripts.ts): `(numKeys, seq, entry…, field)`. Used on a
   * standalone server; a cluster gets pipelines (see {@link ReadBatcher}).
   */
  readonly lookupScript: (...args: Array<string | number>) => Promise<unknown>;
  readonly partitions: number;
  /** Timeout of a lookup (of a batch's round trip). */
  readonly timeoutMs: number;
  /** The backend's guard: a batch registers its deadline there; a lookup sent alone is a guarded call. */
  readonly guard: CallGuard;
  /** The guard's breaker: a batch records one outcome per round trip in it. */
  readonly breaker: CircuitBreaker;
  /** The local clock (when a batch was sent). */
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
 * read in the lookup's round trip before its entry, and when that batch was sent (local ms).
 */
export interface PartitionClock {
  readonly generation: unknown;
  readonly time: unknown;
  readonly sentAt: number;
}

/** The most lookups sent in one round trip (one script call or pipeline); a larger tick is split. */
const MAX_BATCH = 1_000;

/** A lookup waiting for this tick's batch of its partition. */
interface PendingRead {
  readonly base: string;
  readonly key: string;
  readonly resolve: (lookup: CacheLookup | PromiseLike<CacheLookup>) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Sends RedisBackend's lookups. With a closed circuit, the lookups made during one tick are sent together, one
 * command or pipeline per partition (one slot, so valid on a cluster) that reads the partition's generation,
 * the server's `TIME`, then each lookup's entry (its `h` field). A hit is one round trip; a miss has its token
 * in the same round trip (the generation and the time were read before its entry), so a miss and its store
 * take two. One deadline and one breaker outcome per round trip.
 *
 * - On a standalone server the batch is one call of the LOOKUP script: one command and one reply for the whole
 *   batch, where a pipeline costs ioredis a command object, a promise and a reply per lookup (measured: a
 *   batch script serves about twice the hits per second of a pipeline, for a quarter of the Node CPU).
 * - On a cluster it is a pipeline (`GET`, `TIME`, one HGET per lookup): during a slot migration a multi-key
 *   script is refused (TRYAGAIN, which ioredis retries for up to 16 × 100 ms), while single-key commands follow
 *   their redirections; lookups a redirection left unanswered are asked again one by one.
 *
 * Otherwise (an open or half-open circuit) each lookup is sent alone (a plain HGET, whose miss asks for its
 * token separately), through the breaker.
 */
export class ReadBatcher {
  readonly #client: Redis | Cluster;
  readonly #isCluster: boolean;
  readonly #lookupScript: ReadBatcherOptions['lookupScript'];
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
    this.#lookupScript = options.lookupScript;
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
      // At most MAX_BATCH lookups per round trip: a script's arguments are spread through calls (a tick of
      // 80,000 lookups overflowed the stack), and one atomic script should not hold Redis for too long.
      if (closed) for (let i = 0; i < batch.length; i += MAX_BATCH) this.#sendReads(batch.length <= MAX_BATCH ? batch : batch.slice(i, i + MAX_BATCH));
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
      if (!this.#isCluster) {
        const args: Array<string | number> = [batch.length + 1, sequenceKey(base)];
        for (const read of batch) args.push(entryKey(read.base, encodeKey(read.key)));
        args.push(HIT_FIELD);
        const sentAt = this.#now();
        this.#lookupScript(...args).then(reply => {
          if (!this.#guard.settle(pending)) return;
          if (!Array.isArray(reply) || reply.length !== batch.length + 2) this.#failReads(batch, unexpected(batch, Array.isArray(reply) ? reply.length - 2 : undefined));
          else this.#answerReads(batch, reply, sentAt, false);
        }, onError);
        return;
      }
      const pipeline = this.#client.pipeline();
      pipeline.get(sequenceKey(base));
      pipeline.time();
      for (const read of batch) pipeline.hget(entryKey(read.base, encodeKey(read.key)), HIT_FIELD);
      const sentAt = this.#now();
      pipeline.exec().then(replies => {
        if (!this.#guard.settle(pending)) return;
        if (replies === null || replies.length !== batch.length + 2) {
          this.#failReads(batch, unexpected(batch, replies === null ? undefined : replies.length - 2));
          return;
        }
        // On a cluster, ioredis answers a redirection inside a pipeline by sending the whole pipeline again to the
        // node it names (ioredis#2075): during a slot migration, the keys not yet moved then come back empty. After
        // a redirection, lookups that came back empty or redirected are asked again one by one (a single command
        // follows its own redirection). ioredis marks a pipeline it re-sent with `leftRedirections`.
        const redirected = (pipeline as { leftRedirections?: unknown }).leftRedirections !== undefined || replies.some(([error]) => isRedirection(error));
        this.#answerReads(batch, replies.map(([error, reply]) => error ?? reply), sentAt, redirected);
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

  /**
   * Answers a batch from its replies, one per command: the generation, the time, then each lookup's `h` field;
   * a command's error is its reply (the LOOKUP script returns them so; a pipeline's are unwrapped).
   */
  #answerReads(batch: readonly PendingRead[], replies: readonly unknown[], sentAt: number, redirected: boolean): void {
    const generation = replies[0];
    const time = replies[1];
    // Without both (an error, a redirection), a miss asks for its token on its own.
    const clock = redirected || generation instanceof Error || time instanceof Error ? undefined : { generation, time, sentAt };
    let failed = 0;
    for (let i = 0; i < batch.length; i++) {
      const packed = replies[i + 2];
      const read = batch[i]!;
      if (redirected && (packed === null || packed === undefined || (packed instanceof Error && isRedirection(packed)))) this.#lookupAlone(read.base, read.key).then(read.resolve, read.reject);
      else if (packed instanceof Error) {
        // A key of another type in the entry's place: the server answered; a miss, and the key is replaced.
        if (isWrongType(packed)) read.resolve(this.#foreign(read.base, read.key, packed));
        else {
          failed++;
          read.reject(this.#guard.failure(packed));
        }
      } else this.#answer(read, packed as string | null | undefined, clock);
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

function unexpected(batch: readonly PendingRead[], replies: number | undefined): CachingError {
  return new CachingError(errors.E_BACKEND, `RedisBackend: a batch of ${batch.length} lookups returned ${replies === undefined ? 'no replies' : `${replies} replies`}.`);
}

/** Cluster replies that mean "not here, or not now": the lookup is worth asking again on its own. */
function isRedirection(error: Error | null | undefined): boolean {
  return error != null && /^(?:MOVED|ASK|TRYAGAIN|CLUSTERDOWN) /.test(error.message);
}

/** A reply meaning the key holds another type than the command expects (a foreign or corrupt key). */
function isWrongType(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith('WRONGTYPE');
}
