/** Options of a {@link RetryQueue}. */
export interface RetryQueueOptions {
  /** Period of the retry schedule, in ms (fixed, no back-off: an attempt is cheap and bounded). */
  readonly delayMs: number;
  /**
   * Writes the given keys (every key queued when the attempt starts) and resolves once they have landed;
   * rejects if they have not (they then stay queued); its value is ignored. Must be idempotent: a key may be
   * sent again.
   */
  readonly attempt: (keys: string[]) => Promise<unknown>;
  /**
   * False while the connection is being (re)established: an attempt would only wait in the client's offline
   * queue (and pile up there, one per tick), so the queue waits for the next tick, or for the owner's
   * {@link RetryQueue.retryNow} when the connection is ready. @default always ready
   */
  readonly isReady?: (() => boolean) | undefined;
  /** A failed attempt. Rate-limited: a long outage reports one error per 10 s, not one per tick. */
  readonly onError: (error: unknown) => void;
}

/** How often a failing retry is reported during a long outage. */
const REPORT_INTERVAL_MS = 10_000;

/**
 * Keys whose write (an invalidation, a publish) could not reach the remote, kept until it lands: retried every
 * `delayMs` and whenever the owner calls {@link retryNow} (on reconnect), one attempt in flight at a time, and
 * once more on {@link dispose}. The owner asks {@link affects} and {@link queuedSince} so that, until a key has
 * landed, it serves nothing the key invalidates and stores nothing computed before it was queued. Each queued
 * key remembers the local sequence number of its latest {@link add}, so a key queued again during an attempt
 * stays queued after that attempt.
 */
export class RetryQueue {
  readonly #delayMs: number;
  readonly #attempt: (keys: string[]) => Promise<unknown>;
  readonly #isReady: (() => boolean) | undefined;
  readonly #onError: (error: unknown) => void;
  /** Keys not yet written: key → local sequence number when it was (last) queued. */
  readonly #pending = new Map<string, number>();
  #sequence = 0;
  #timer: NodeJS.Timeout | undefined;
  /** The attempt in flight (at most one), so that a reconnect or a tick never sends a second one. */
  #retrying: Promise<void> | undefined;
  /** A retry was asked for while an attempt was in flight: try again as soon as it settles, not a tick later. */
  #retryAgain = false;
  /** When a failed attempt was last reported. */
  #reportedAt = -Infinity;
  #disposed = false;

  constructor(options: RetryQueueOptions) {
    this.#delayMs = options.delayMs;
    this.#attempt = options.attempt;
    this.#isReady = options.isReady;
    this.#onError = options.onError;
  }

  /** Number of keys waiting to be written. */
  get size(): number {
    return this.#pending.size;
  }

  /**
   * The local sequence number of the latest {@link add}. A computation remembers it when it starts; a key
   * queued later ({@link queuedSince}) means its result may be stale.
   */
  get sequence(): number {
    return this.#sequence;
  }

  /** Queues keys (never dropped) and arms the retry schedule. */
  add(keys: readonly string[]): void {
    const sequence = ++this.#sequence;
    for (const key of keys) this.#pending.set(key, sequence);
    this.#schedule();
  }

  /** Is the key, or one of its dependencies, waiting to be written? */
  affects(key: string, dependencies: readonly string[]): boolean {
    if (this.#pending.size === 0) return false;
    if (this.#pending.has(key)) return true;
    for (const d of dependencies) if (this.#pending.has(d)) return true;
    return false;
  }

  /** Was the key, or one of its dependencies, queued after {@link sequence} was `sequence`? */
  queuedSince(sequence: number, key: string, dependencies: readonly string[]): boolean {
    if ((this.#pending.get(key) ?? -1) > sequence) return true;
    for (const d of dependencies) if ((this.#pending.get(d) ?? -1) > sequence) return true;
    return false;
  }

  /** Starts an attempt now unless one is in flight (then it is repeated as soon as that one settles). */
  retryNow(): void {
    if (this.#disposed || this.#pending.size === 0) return;
    if (this.#retrying !== undefined) {
      this.#retryAgain = true;
      return;
    }
    if (this.#isReady !== undefined && !this.#isReady()) {
      this.#schedule();
      return;
    }
    this.#retryAgain = false;
    this.#retrying = this.#retryPending().then(
      () => {
        this.#reportedAt = -Infinity;
      },
      error => {
        const now = Date.now();
        if (now - this.#reportedAt < REPORT_INTERVAL_MS) return;
        this.#reportedAt = now;
        this.#onError(error);
      },
    );
    void this.#retrying.then(() => {
      this.#retrying = undefined;
      if (this.#pending.size === 0) return;
      // Keys queued meanwhile, or this attempt failed: again at once if asked meanwhile, else on the next tick.
      if (this.#retryAgain) this.retryNow();
      else this.#schedule();
    });
  }

  /**
   * Stops the schedule and makes one last attempt (after the one in flight, if any); its failure is silent.
   * Keys still queued afterwards are lost with the owner.
   */
  async dispose(): Promise<void> {
    this.#disposed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#retrying !== undefined) await this.#retrying;
    if (this.#pending.size > 0) await this.#retryPending().catch(() => undefined);
  }

  /** Arms the next tick of the schedule. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#disposed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.retryNow();
    }, this.#delayMs);
    this.#timer.unref();
  }

  async #retryPending(): Promise<void> {
    const batch = new Map(this.#pending);
    if (batch.size === 0) return;
    await this.#attempt([...batch.keys()]);
    // Keep keys queued again while this attempt ran.
    for (const [key, sequence] of batch) if (this.#pending.get(key) === sequence) this.#pending.delete(key);
  }
}
