import { createRequire } from 'node:module';
import { CachingError, errors } from '../errors.js';
import type { CacheStats } from '../types.js';

/**
 * The part of `@opentelemetry/api` aspect-cache uses. Pass the real module (`import * as api from
 * '@opentelemetry/api'`) or let the service load it when it is installed.
 */
export interface OpenTelemetryApi {
  /** `trace` of `@opentelemetry/api`: the service's spans. */
  trace: {
    /** Returns the tracer of the instrumentation scope `name`. */
    getTracer(name: string, version?: string): OtelTracer;
  };
  /** `metrics` of `@opentelemetry/api`: the service's counters and histograms. */
  metrics: {
    /** Returns the meter of the instrumentation scope `name`. */
    getMeter(name: string, version?: string): OtelMeter;
  };
}

interface OtelSpan {
  setAttribute(key: string, value: string | number | boolean): unknown;
  recordException(exception: unknown): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

interface OtelTracer {
  startActiveSpan<T>(name: string, options: { attributes?: Record<string, string | number | boolean> }, fn: (span: OtelSpan) => T): T;
}

interface OtelObservableResult {
  observe(value: number, attributes?: Record<string, string>): void;
}

interface OtelObservableCounter {
  addCallback(callback: (result: OtelObservableResult) => void): void;
  removeCallback(callback: (result: OtelObservableResult) => void): void;
}

interface OtelMeter {
  createObservableCounter(name: string, options?: { description?: string; unit?: string }): OtelObservableCounter;
}

/** `telemetry` option of `CachingService`. */
export type TelemetryOption =
  | boolean
  | {
      /** The OpenTelemetry API to use (`import * as api from '@opentelemetry/api'`). */
      api: OpenTelemetryApi;
    };

/** What the service calls; null when telemetry is off. */
export interface Telemetry {
  /** Runs a miss computation inside a span (`aspect-cache.compute`), ended when its value settles. */
  compute<T>(key: string, method: string, run: () => T): T;
  /** Stops reporting metrics. */
  dispose(): void;
}

const STATUS_ERROR = 2; // SpanStatusCode.ERROR, stable in the OpenTelemetry API

const COUNTERS: ReadonlyArray<[keyof CacheStats, string]> = [
  ['hits', 'Lookups answered from the cache'],
  ['misses', 'Lookups that ran the method'],
  ['joins', 'Callers that joined a computation in flight'],
  ['sets', 'Values stored'],
  ['skips', 'Values computed but not stored'],
  ['invalidations', 'Invalidation calls'],
  ['invalidatedEntries', 'Entries removed by invalidations'],
  ['errors', 'Errors reported'],
  ['failsafes', 'Expired values served by fail-safe'],
];

/**
 * Sets up OpenTelemetry for one service: spans around miss computations, and observable counters (read from
 * `stats()` when metrics are collected, so cache hits pay nothing). With no SDK registered, the API's no-op
 * tracer and meter make all of it free.
 */
export function createTelemetry(option: TelemetryOption | undefined, stats: () => CacheStats, serviceName: string): Telemetry | null {
  if (option === false) return null;
  let api: OpenTelemetryApi | undefined;
  if (option !== undefined && option !== true) {
    api = option.api;
    if (!api || typeof api.trace?.getTracer !== 'function' || typeof api.metrics?.getMeter !== 'function') {
      throw new CachingError(errors.E_INVALID_OPTION, "CachingService: option telemetry.api must be the '@opentelemetry/api' module (with trace and metrics).");
    }
  } else {
    api = loadInstalledApi();
    if (api === undefined) {
      if (option === true) {
        throw new CachingError(errors.E_INVALID_OPTION, "CachingService: telemetry: true needs the '@opentelemetry/api' package; install it, or leave the option out to enable telemetry only when it is present.");
      }
      return null;
    }
  }
  const tracer = api.trace.getTracer('aspect-cache');
  const meter = api.metrics.getMeter('aspect-cache');
  const attributes = { 'aspect_cache.service': serviceName };
  const registrations: Array<[OtelObservableCounter, (result: OtelObservableResult) => void]> = [];
  for (const [field, description] of COUNTERS) {
    const counter = meter.createObservableCounter(`aspect_cache.${snake(field)}`, { description });
    const callback = (result: OtelObservableResult) => result.observe(stats()[field], attributes);
    counter.addCallback(callback);
    registrations.push([counter, callback]);
  }
  return {
    compute<T>(key: string, method: string, run: () => T): T {
      return tracer.startActiveSpan('aspect-cache.compute', { attributes: { 'aspect_cache.key': key, 'aspect_cache.method': method, ...attributes } }, span => {
        let result: T;
        try {
          result = run();
        } catch (error) {
          fail(span, error);
          throw error;
        }
        if (result !== null && typeof result === 'object' && typeof (result as { then?: unknown }).then === 'function') {
          (result as unknown as PromiseLike<unknown>).then(
            () => span.end(),
            error => fail(span, error),
          );
        } else {
          span.end();
        }
        return result;
      });
    },
    dispose() {
      for (const [counter, callback] of registrations) counter.removeCallback(callback);
    },
  };
}

function fail(span: OtelSpan, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: STATUS_ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}

let installed: OpenTelemetryApi | null | undefined;

/** Loads `@opentelemetry/api` if the application has it installed (synchronously: no top-level await). */
function loadInstalledApi(): OpenTelemetryApi | undefined {
  if (installed === undefined) {
    try {
      installed = createRequire(import.meta.url)('@opentelemetry/api') as OpenTelemetryApi;
    } catch {
      installed = null;
    }
  }
  return installed ?? undefined;
}

function snake(name: string): string {
  return name.replace(/[A-Z]/g, c => `_${c.toLowerCase()}`);
}
