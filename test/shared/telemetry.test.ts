import * as otel from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { bindCachingService, Cache, CachingError, CachingService, type OpenTelemetryApi } from 'aspect-cache';

// OpenTelemetry (SPEC §9): spans around miss computations and observable counters, through
// @opentelemetry/api when it is present. A hand-written tracer and meter record what the library does.

interface RecordedSpan {
  name: string;
  attributes: Record<string, unknown>;
  ended: boolean;
  exceptions: unknown[];
  status?: { code: number };
}

const spans: RecordedSpan[] = [];
const callbacks = new Map<string, Set<(result: { observe(value: number, attributes?: Record<string, string>): void }) => void>>();

const tracer = {
  startActiveSpan(name: string, options: { attributes?: Record<string, unknown> }, fn: (span: unknown) => unknown) {
    const recorded: RecordedSpan = { name, attributes: { ...options.attributes }, ended: false, exceptions: [] };
    spans.push(recorded);
    return fn({
      setAttribute: (k: string, v: unknown) => (recorded.attributes[k] = v),
      recordException: (e: unknown) => recorded.exceptions.push(e),
      setStatus: (s: { code: number }) => (recorded.status = s),
      end: () => (recorded.ended = true),
      isRecording: () => true,
      spanContext: () => ({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 1 }),
    });
  },
  startSpan() {
    throw new Error('not used');
  },
};

const meter = {
  createObservableCounter(name: string) {
    return {
      addCallback(cb: never) {
        (callbacks.get(name) ?? callbacks.set(name, new Set()).get(name)!).add(cb);
      },
      removeCallback(cb: never) {
        callbacks.get(name)?.delete(cb);
      },
    };
  },
};

/** Reads an observable counter the way a metrics SDK would at collection time. */
function collect(name: string): number[] {
  const values: number[] = [];
  for (const cb of callbacks.get(name) ?? []) cb({ observe: v => values.push(v) });
  return values;
}

const fakeApi: OpenTelemetryApi = { trace: { getTracer: () => tracer as never }, metrics: { getMeter: () => meter as never } };

const services: CachingService[] = [];
afterEach(async () => {
  spans.length = 0;
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

class Catalogue {
  @Cache()
  async price(id: string): Promise<number> {
    if (id === 'bad') throw new Error('no such product');
    return id.length;
  }

  @Cache()
  size(id: string): number {
    return id.length;
  }
}

function catalogue(options: ConstructorParameters<typeof CachingService>[0]): { c: Catalogue; service: CachingService } {
  const service = new CachingService(options);
  services.push(service);
  return { c: bindCachingService(new Catalogue(), service), service };
}

describe('OpenTelemetry with an explicit api', () => {
  it('wraps each miss computation in an aspect-cache.compute span with the key and method, and no span on hits', async () => {
    const { c } = catalogue({ telemetry: { api: fakeApi } });
    await c.price('corn');
    await c.price('corn');
    expect(c.size('wheat')).toBe(5);
    expect(spans.map(s => s.name)).toEqual(['aspect-cache.compute', 'aspect-cache.compute']);
    expect(spans[0]!.attributes['aspect_cache.key']).toBe('Catalogue.price("corn")');
    expect(spans[0]!.attributes['aspect_cache.method']).toBe('Catalogue.price');
    expect(spans.every(s => s.ended)).toBe(true);
  });

  it('records a failing computation as an exception with an error status', async () => {
    const { c } = catalogue({ telemetry: { api: fakeApi } });
    await expect(c.price('bad')).rejects.toThrow('no such product');
    expect(spans).toHaveLength(1);
    expect(spans[0]!.ended).toBe(true);
    expect(spans[0]!.status?.code).toBe(2);
    expect((spans[0]!.exceptions[0] as Error).message).toBe('no such product');
  });

  it('reports the counters of stats() as observable counters, and stops when disposed', async () => {
    const { c, service } = catalogue({ telemetry: { api: fakeApi }, keyPrefix: 'shop:' });
    await c.price('corn');
    await c.price('corn');
    await c.price('corn');
    expect(collect('aspect_cache.hits')).toEqual([2]);
    expect(collect('aspect_cache.misses')).toEqual([1]);
    expect(collect('aspect_cache.invalidated_entries')).toEqual([0]);
    await service.dispose();
    expect(collect('aspect_cache.hits')).toEqual([]);
  });

  it('telemetry: false records nothing', async () => {
    const { c } = catalogue({ telemetry: false });
    await c.price('corn');
    expect(spans).toHaveLength(0);
  });

  it('rejects an api object that is not the OpenTelemetry API', () => {
    expect(() => new CachingService({ telemetry: { api: {} as never } })).toThrow(CachingError);
  });
});

describe('OpenTelemetry through the installed @opentelemetry/api (auto-detected)', () => {
  beforeAll(() => {
    otel.trace.setGlobalTracerProvider({ getTracer: () => tracer as never });
    otel.metrics.setGlobalMeterProvider({ getMeter: () => meter as never });
  });
  afterAll(() => {
    otel.trace.disable();
    otel.metrics.disable();
  });

  it('is on by default when the package is installed: spans reach the registered tracer provider', async () => {
    const { c } = catalogue({});
    await c.price('barley');
    expect(spans.map(s => s.attributes['aspect_cache.key'])).toEqual(['Catalogue.price("barley")']);
  });
});
