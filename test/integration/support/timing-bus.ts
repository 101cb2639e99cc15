// An InvalidationBus wrapper for the layered consistency test on Redis: passes everything through unchanged and
// notes when this process's invalidations were accepted by the transport and when other processes' invalidations
// were applied here, so that the parent can measure the delivery delay (resolve → the other process's L1 drop)
// that the cross-process read-your-writes bound has to cover.
import type { BusReceiver, InvalidationBus } from '../../../src/index.js';

/** What the wrapper noted: times are Date.now() of this process (every process of the test runs on one machine). */
export interface BusTimings {
  /** Own invalidations: [sequence number, when the publish resolved]. */
  readonly published: Array<[number, number]>;
  /** Other processes' invalidations: [sender id, sequence number, sent at (sender's clock), when the receiver returned]. */
  readonly heard: Array<[string, number, number, number]>;
}

/** The fields of the layered protocol's wire message this wrapper reads (see BusProtocol). */
interface Wire {
  t?: string;
  f?: string;
  s?: number;
  a?: number;
}

function parse(payload: string): Wire | undefined {
  try {
    return JSON.parse(payload) as Wire;
  } catch {
    return undefined;
  }
}

export class TimingBus implements InvalidationBus {
  readonly name: string;
  readonly heartbeatMs: number;
  readonly timings: BusTimings = { published: [], heard: [] };
  /** Set by the owner once the layered backend exists: its own messages are not "heard" from another process. */
  ownId: string | undefined;

  constructor(readonly inner: InvalidationBus) {
    this.name = `timing(${inner.name})`;
    this.heartbeatMs = inner.heartbeatMs;
  }

  publish(payload: string): Promise<void> {
    const message = parse(payload);
    return this.inner.publish(payload).then(() => {
      // The layered backend resolves its invalidation right after this (no further I/O).
      if (message?.t === 'i' && typeof message.s === 'number') this.timings.published.push([message.s, Date.now()]);
    });
  }

  subscribe(receiver: BusReceiver): () => void {
    return this.inner.subscribe({
      onConnection: state => receiver.onConnection(state),
      ...(receiver.onError ? { onError: (error: unknown, operation: string) => receiver.onError!(error, operation) } : {}),
      onMessage: payload => {
        receiver.onMessage(payload);
        // After the receiver returned: the layered backend dropped the keys from L1 synchronously.
        const message = parse(payload);
        if (message?.t === 'i' && typeof message.f === 'string' && message.f !== this.ownId && typeof message.s === 'number') {
          this.timings.heard.push([message.f, message.s, message.a ?? NaN, Date.now()]);
        }
      },
    });
  }

  dispose(): Promise<void> {
    return this.inner.dispose();
  }
}
