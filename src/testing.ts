/**
 * Test helpers for aspect-cache and for custom backends: the backend conformance suite, a chaos backend
 * that fails on demand, an in-process invalidation bus that loses, delays and reorders messages, and a fake
 * clock.
 *
 * @packageDocumentation
 * @module aspect-cache/testing
 */
export { FakeClock } from './testing/fake-clock.js';
export { ChaosBackend, type ChaosOperation } from './testing/chaos-backend.js';
export { TestBusNetwork, TestBus, type TestBusNetworkOptions, type TestBusFaults } from './testing/test-bus.js';
export { describeBackendConformance, type ConformanceOptions } from './testing/conformance-suite.js';
