import { describe, expect, it } from 'vitest';
import { CachingError, errors } from '../../src/errors.js';
import { CircuitBreaker, type CircuitState } from '../../src/backends/resilience/circuit-breaker.js';

/** A breaker owned by `Owner`, on a clock the test moves, recording its state changes. */
function breakerOf(options: { failureThreshold?: number; resetTimeoutMs?: number } = {}) {
  const clock = { time: 0, now: () => clock.time };
  const changes: CircuitState[] = [];
  const breaker = new CircuitBreaker(options, { where: 'Owner', remote: 'the store', clock, onChange: state => changes.push(state) });
  return { breaker, clock, changes };
}

const fail = () => Promise.reject(new Error('down'));
const succeed = () => Promise.resolve('ok');

describe('CircuitBreaker', () => {
  it('names its owner in option errors', () => {
    const clock = { now: () => 0 };
    const owner = { where: 'SomeBackend', remote: 'X', clock, onChange: () => undefined };
    expect(() => new CircuitBreaker({ failureThreshold: 0 }, owner)).toThrow('SomeBackend: option circuitBreaker.failureThreshold must be a positive integer, got 0.');
    expect(() => new CircuitBreaker({ resetTimeoutMs: -1 }, owner)).toThrow('SomeBackend: option circuitBreaker.resetTimeoutMs must be a positive number of ms, got -1.');
  });

  it('opens after failureThreshold consecutive failures and then refuses at once, naming owner and remote', async () => {
    const { breaker, changes } = breakerOf({ failureThreshold: 2 });
    await expect(breaker.run(fail)).rejects.toThrow('down');
    expect(breaker.state).toBe('closed');
    await expect(breaker.run(fail)).rejects.toThrow('down');
    expect(breaker.state).toBe('open');
    expect(changes).toEqual(['open']);
    let called = false;
    const refused = await breaker.run(() => ((called = true), succeed())).catch((error: unknown) => error);
    expect(called).toBe(false);
    expect(refused).toBeInstanceOf(CachingError);
    expect((refused as CachingError).code).toBe(errors.E_BACKEND);
    expect((refused as CachingError).message).toBe('Owner: the circuit is open after repeated failures; the store is not called until the next probe.');
  });

  it('a success resets the count of consecutive failures', async () => {
    const { breaker } = breakerOf({ failureThreshold: 2 });
    await breaker.run(fail).catch(() => undefined);
    await breaker.run(succeed);
    await breaker.run(fail).catch(() => undefined);
    expect(breaker.state).toBe('closed');
    breaker.recordFailure();
    expect(breaker.state).toBe('open');
  });

  it('lets one probe through after resetTimeoutMs: its success closes, its failure reopens', async () => {
    const { breaker, clock, changes } = breakerOf({ failureThreshold: 1, resetTimeoutMs: 100 });
    await breaker.run(fail).catch(() => undefined);
    clock.time = 99;
    await expect(breaker.run(succeed)).rejects.toThrow(/circuit is open/);
    clock.time = 100;
    await expect(breaker.run(fail)).rejects.toThrow('down');
    expect(breaker.state).toBe('open');
    clock.time = 200;
    let release!: (value: string) => void;
    const probe = breaker.run(() => new Promise<string>(resolve => (release = resolve)));
    expect(breaker.state).toBe('half-open');
    await expect(breaker.run(succeed)).rejects.toThrow(/circuit is open/); // one probe at a time
    release('ok');
    await expect(probe).resolves.toBe('ok');
    expect(breaker.state).toBe('closed');
    expect(changes).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});
