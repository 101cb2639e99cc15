/**
 * The transport that carries invalidations between the processes of a layered deployment (see
 * `LayeredBackend`): a publish/subscribe channel of strings, nothing more. The protocol on top of it — who sent
 * a message, its sequence number, heartbeats, gap detection, echo suppression — lives in the layered backend,
 * so that every transport (Redis pub/sub, the in-process test bus, one a user writes for NATS or Postgres
 * `LISTEN`) gets the same guarantees without re-implementing them.
 *
 * A transport must:
 * - deliver a published payload to every receiver subscribed on the channel, **the sender's own included** (a
 *   process hears its own heartbeats: that is how it knows its subscription still works);
 * - deliver payloads in the order it accepted them as far as it can (a reordered or lost payload is detected
 *   by the protocol and handled safely, never trusted);
 * - call `onConnection('down')` as soon as it knows its subscription was lost, and `onConnection('up')` once
 *   it is live (again);
 * - never throw from a receiver callback into its own machinery (a receiver's failure is the receiver's).
 */
export interface InvalidationBus {
  /** A short name for messages and events ("redis", "test"…). */
  readonly name: string;
  /**
   * How often each process sends a heartbeat on the channel, in ms. A process that hears nothing of its own on
   * the channel for about two heartbeats stops trusting its local cache until it hears again, so this is the
   * staleness bound when messages are lost silently.
   */
  readonly heartbeatMs: number;
  /**
   * Sends a payload to every receiver on the channel. Resolves once the transport has accepted it; rejects
   * (never hangs: a transport bounds the wait with a timeout) when it could not.
   */
  publish(payload: string): Promise<void>;
  /**
   * Adds a receiver; the returned function removes it. The first receiver opens the subscription. After
   * `subscribe`, the transport reports the subscription's state through `onConnection` (`'up'` once it is
   * live, even if it already was).
   */
  subscribe(receiver: BusReceiver): () => void;
  /** Closes what the transport opened (its subscriber connection); the application's clients stay open. */
  dispose(): Promise<void>;
}

/** What an {@link InvalidationBus} calls. */
export interface BusReceiver {
  /** A payload arrived on the channel (the receiver validates it: malformed or foreign payloads are ignored safely). */
  onMessage(payload: string): void;
  /** The subscription is live (`'up'`) or was lost (`'down'`). */
  onConnection(state: 'up' | 'down'): void;
  /** A failure the transport absorbed (a reconnect that failed, say), for events. */
  onError?(error: unknown, operation: string): void;
}
