import { randomUUID } from 'node:crypto';
import type { Clock, ResyncReason } from '../../types.js';
import type { BusReceiver, InvalidationBus } from '../invalidation-bus.js';


/** What the protocol tells its owner (the layered backend). */
export interface BusProtocolHandler {
  /** Another process invalidated these root keys. */
  invalidate(keys: readonly string[]): void;
  /** Another process cleared the cache. */
  clear(): void;
  /** A message may have been missed: drop every local copy now. */
  resync(reason: ResyncReason): void;
  /** A failure the protocol absorbed (a heartbeat that could not be published). */
  error(error: unknown, operation: string): void;
}

/** The last message heard from another process. */
interface Sender {
  /** Highest sequence number heard. */
  seq: number;
  /** Local time it was last heard. */
  heardAt: number;
  /** Numbers below `seq` not heard yet: late (reordered) or lost; a resync if still missing after the grace. */
  missing: Set<number> | undefined;
}

/** A skip of more numbers than this is not waited for: resync at once. */
const MAX_MISSING = 1_000;

/** Version tag of the wire format: a payload without it is foreign. */
const PROTOCOL = 'ac1';

/**
 * The protocol spoken on an {@link InvalidationBus}, on top of any transport: who sent a message, in what
 * order, and whether this process can still trust that it heard everything.
 *
 * Every message carries the sender's instance id, the sender's sequence number (one more per message,
 * heartbeats included) and its send time on the sender's clock. Each process heartbeats every `heartbeatMs`.
 *
 * **Trust.** A process trusts its L1 only while it keeps hearing *its own* messages: the transport delivers a
 * process's messages back to it, through the same subscription as everyone else's, so an echo sent at `t` and
 * heard proves the subscription delivered everything published before `t` (a transport keeps order). Trust
 * lasts until two heartbeats after the send time of the last echo heard: a subscription that is lost, stalled
 * or lagging (its echoes arrive late) loses trust within about two heartbeats, even when nothing reports it.
 * When trust lapses and returns, the owner resyncs (drops L1) before serving from it again.
 *
 * **Gaps.** A sender's sequence that skips a number (a lost message, or a publish that failed and left a hole),
 * an unknown sender first heard past its first message, a known sender gone silent without a goodbye, or a
 * payload that is not of this protocol each make the owner resync at once. Duplicates and late (reordered)
 * invalidations are applied again: invalidating twice is harmless.
 *
 * Own invalidations are not applied on echo (the owner applied them before publishing).
 */
export class BusProtocol {
  /** This process's instance id on the channel (random per backend instance). */
  readonly id = randomUUID();
  readonly #bus: InvalidationBus;
  readonly #clock: Clock;
  readonly #handler: BusProtocolHandler;
  readonly #heartbeatMs: number;
  readonly #senders = new Map<string, Sender>();
  readonly #unsubscribe: () => void;
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #up = false;
  /** Trusted while the clock is before this: two heartbeats after the send time of the last own echo heard. */
  #trustedUntil = -Infinity;
  /** Two heartbeats after the oldest "last heard" of the known senders (Infinity when none is known). */
  #sendersUntil = Infinity;
  /** True once L1 was dropped for the current lapse of trust (so a lapse drops it once, promptly). */
  #droppedForLapse = true;
  #disposed = false;
  readonly #reportedAt = new Map<string, number>();
  #gapTimer: NodeJS.Timeout | undefined;

  constructor(bus: InvalidationBus, clock: Clock, handler: BusProtocolHandler) {
    this.#bus = bus;
    this.#clock = clock;
    this.#handler = handler;
    this.#heartbeatMs = bus.heartbeatMs;
    const receiver: BusReceiver = {
      onMessage: payload => this.#receive(payload),
      onConnection: state => this.#connection(state),
      onError: (error, operation) => this.#transportError(error, operation),
    };
    this.#unsubscribe = bus.subscribe(receiver);
    this.#timer = setInterval(() => this.#tick(), this.#heartbeatMs);
    this.#timer.unref();
  }

  /**
   * True if L1 may be served now: the subscription is live, an own echo sent within the last two heartbeats was
   * heard, and every known sender was heard within the last two heartbeats. A sender silent for longer is
   * forgotten with a resync (its last message may be lost), after which L1 is trusted again.
   */
  trusted(now: number): boolean {
    if (now < this.#trustedUntil && now < this.#sendersUntil) return true;
    if (now >= this.#sendersUntil) this.#forgetSilent(now);
    return now < this.#trustedUntil && now < this.#sendersUntil;
  }

  /** Forgets the senders not heard for two heartbeats, with one resync, and recomputes #sendersUntil. */
  #forgetSilent(now: number): void {
    let silent = false;
    for (const [id, sender] of this.#senders) {
      if (now >= sender.heardAt + 2 * this.#heartbeatMs) {
        this.#senders.delete(id);
        silent = true;
      }
    }
    this.#recomputeSendersUntil();
    if (silent) this.#resync('sender-silent');
  }

  #recomputeSendersUntil(): void {
    let oldest = Infinity;
    for (const sender of this.#senders.values()) if (sender.heardAt < oldest) oldest = sender.heardAt;
    this.#sendersUntil = oldest + 2 * this.#heartbeatMs;
  }

  /** The staleness bound this protocol enforces when messages are lost silently: two heartbeats, in ms. */
  get boundMs(): number {
    return 2 * this.#heartbeatMs;
  }

  /** Publishes an invalidation of root keys; rejects if the transport did not accept it. */
  publishInvalidate(keys: readonly string[]): Promise<void> {
    return this.#send('i', keys);
  }

  /** Publishes a clear; rejects if the transport did not accept it. */
  publishClear(): Promise<void> {
    return this.#send('c');
  }

  /** Says goodbye (so others forget this sender without a resync), stops heartbeating and unsubscribes. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#gapTimer !== undefined) clearTimeout(this.#gapTimer);
    this.#timer = this.#gapTimer = undefined;
    if (this.#up) await this.#send('b').catch(() => undefined);
    this.#unsubscribe();
  }

  #send(type: 'i' | 'c' | 'h' | 'b', keys?: readonly string[]): Promise<void> {
    // A number is used even when the publish fails: the hole it leaves is how receivers learn they may have
    // missed something, as soon as any later message of this sender reaches them.
    const message: WireMessage = { p: PROTOCOL, t: type, f: this.id, s: ++this.#seq, a: this.#clock.now() };
    if (keys !== undefined) message.k = keys;
    try {
      return this.#bus.publish(JSON.stringify(message));
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #heartbeat(): void {
    this.#send('h').catch(error => this.#transportError(error, 'heartbeat'));
  }

  /**
   * Reports a transport failure, at most once per operation per 10 s: a bus that cannot reconnect fails on
   * every attempt and every heartbeat, and one event says as much as a thousand.
   */
  #transportError(error: unknown, operation: string): void {
    const now = Date.now();
    if (now - (this.#reportedAt.get(operation) ?? -Infinity) < 10_000) return;
    this.#reportedAt.set(operation, now);
    this.#handler.error(error, `bus: ${operation}`);
  }

  #tick(): void {
    if (this.#disposed) return;
    if (this.#up) this.#heartbeat();
    const now = this.#clock.now();
    // Drop L1 as soon as trust lapses (not only when trust returns), so that stale copies do not pin memory.
    if (!this.#droppedForLapse && now >= this.#trustedUntil) this.#resync('silence');
    // A sender gone quiet may have lost its last message on the way: forget it, and resync to be safe.
    if (now >= this.#sendersUntil) this.#forgetSilent(now);
  }

  #connection(state: 'up' | 'down'): void {
    if (this.#disposed) return;
    if (state === 'down') {
      this.#up = false;
      this.#trustedUntil = -Infinity;
      this.#resync('disconnected');
      return;
    }
    if (this.#up) return;
    this.#up = true;
    // Trust comes with the first echo of this heartbeat.
    this.#heartbeat();
  }

  #receive(payload: string): void {
    if (this.#disposed) return;
    const message = parse(payload);
    if (message === undefined) {
      this.#resync('foreign');
      return;
    }
    const now = this.#clock.now();
    if (message.f === this.id) {
      if (now >= this.#trustedUntil) {
        // Trust had lapsed: whatever was missed meanwhile is dropped before L1 is trusted again.
        if (!this.#droppedForLapse) this.#resync('silence');
      }
      const until = message.a + 2 * this.#heartbeatMs;
      if (until > this.#trustedUntil && this.#up) {
        this.#trustedUntil = until;
        if (now < until) this.#droppedForLapse = false;
      }
      return;
    }
    let sender = this.#senders.get(message.f);
    if (sender === undefined) {
      // Unknown: numbers before this one were sent before this process listened, or are on their way (a new
      // sender whose first messages were reordered), or lost. Waited for like any gap.
      sender = { seq: 0, heardAt: now, missing: undefined };
      if (message.t !== 'b') this.#senders.set(message.f, sender);
    }
    const wasOldest = sender.heardAt + 2 * this.#heartbeatMs <= this.#sendersUntil;
    sender.heardAt = now;
    if (wasOldest) this.#recomputeSendersUntil();
    if (message.s > sender.seq + 1) this.#gap(sender, sender.seq + 1, message.s);
    else if (message.s <= sender.seq && sender.missing !== undefined) {
      sender.missing.delete(message.s);
      if (sender.missing.size === 0) sender.missing = undefined;
    }
    if (message.s > sender.seq) sender.seq = message.s;
    if (message.t === 'b') {
      this.#senders.delete(message.f);
      this.#recomputeSendersUntil();
      if (sender.missing !== undefined) this.#resync('gap');
    }
    if (message.t === 'i') this.#handler.invalidate(message.k!);
    else if (message.t === 'c') this.#handler.clear();
  }

  /**
   * Numbers `from` to `to - 1` of a sender were skipped. Transports may reorder (on a cluster, publishes sent
   * to different nodes), so they are waited for a short grace — a delay, within the propagation bound — and a
   * resync follows only if one is still missing then (lost, or sent before this process listened).
   */
  #gap(sender: Sender, from: number, to: number): void {
    if (to - from > MAX_MISSING) {
      sender.missing = undefined;
      this.#resync('gap');
      return;
    }
    sender.missing ??= new Set();
    for (let n = from; n < to; n++) sender.missing.add(n);
    this.#gapTimer ??= setTimeout(() => this.#checkGaps(), this.gapGraceMs);
  }

  /** How long a skipped sequence number is waited for before a resync, in ms: a tenth of a heartbeat, at most 50. */
  get gapGraceMs(): number {
    return Math.min(50, this.#heartbeatMs / 10);
  }

  #checkGaps(): void {
    this.#gapTimer = undefined;
    if (this.#disposed) return;
    let missed = false;
    for (const sender of this.#senders.values()) {
      if (sender.missing === undefined) continue;
      // A gap noted after this timer was armed is judged with it, before its own grace ends: conservative.
      sender.missing = undefined;
      missed = true;
    }
    if (missed) this.#resync('gap');
  }

  #resync(reason: ResyncReason): void {
    this.#droppedForLapse = true;
    this.#handler.resync(reason);
  }
}

/** A message as sent: protocol tag, type (invalidate, clear, heartbeat, bye), sender, sequence, send time, keys. */
interface WireMessage {
  p: typeof PROTOCOL;
  t: 'i' | 'c' | 'h' | 'b';
  f: string;
  s: number;
  a: number;
  k?: readonly string[];
}

/** The message in a payload, or undefined if it is not one of this protocol. */
function parse(payload: string): WireMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  const m = value as Partial<WireMessage>;
  if (m.p !== PROTOCOL || typeof m.f !== 'string' || m.f.length === 0 || !Number.isSafeInteger(m.s) || m.s! < 1 || typeof m.a !== 'number' || !Number.isFinite(m.a)) return undefined;
  if (m.t === 'i') {
    if (!Array.isArray(m.k) || !m.k.every(k => typeof k === 'string')) return undefined;
  } else if (m.t !== 'c' && m.t !== 'h' && m.t !== 'b') return undefined;
  return m as WireMessage;
}
