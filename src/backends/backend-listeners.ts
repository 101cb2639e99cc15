import { CachingError, errors } from '../errors.js';
import type { BackendEvent, BackendListener, RemovalReason } from './backend.js';

/**
 * The listeners of one backend, for {@link CachingBackend.subscribe}: backends keep one of these and call
 * {@link removal} / {@link event}. Kept as an immutable array replaced on (un)subscribe, so reporting
 * allocates nothing and a listener that unsubscribes while being called does not skip another.
 */
export class BackendListeners {
  #listeners: readonly BackendListener[] = [];

  /** True if at least one listener is subscribed. */
  get active(): boolean {
    return this.#listeners.length > 0;
  }

  /** Adds a listener; the returned function removes it (calling it again does nothing). */
  subscribe(listener: BackendListener): () => void {
    if (listener === null || typeof listener !== 'object') {
      throw new CachingError(errors.E_INVALID_OPTION, 'subscribe(listener): the listener must be an object { onRemoval?, onEvent? }.');
    }
    // A distinct wrapper per subscription, so the same listener subscribed twice is removed once per call.
    const entry: BackendListener = { onRemoval: listener.onRemoval, onEvent: listener.onEvent };
    this.#listeners = [...this.#listeners, entry];
    return () => {
      this.#listeners = this.#listeners.filter(l => l !== entry);
    };
  }

  /** Reports an entry that left on its own to every listener. */
  removal(key: string, reason: RemovalReason): void {
    for (const listener of this.#listeners) {
      try {
        listener.onRemoval?.(key, reason);
      } catch {
        // the listener's problem: the backend operation that reported it goes on, and so do the others
      }
    }
  }

  /** Reports an absorbed failure or a circuit change to every listener. */
  event(event: BackendEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener.onEvent?.(event);
      } catch {
        // as above
      }
    }
  }
}
