/**
 * The Redis backend of aspect-cache (ioredis, standalone or Cluster). `ioredis` is an optional peer
 * dependency imported only by this entry point.
 *
 * @packageDocumentation
 * @module aspect-cache/redis
 */
export { RedisBackend, type RedisBackendOptions, type RedisLockOptions } from './backends/redis/redis-backend.js';
export { RedisInvalidationBus, type RedisInvalidationBusOptions } from './backends/redis/redis-invalidation-bus.js';
export type { CircuitBreakerOptions, CircuitState } from './backends/resilience/circuit-breaker.js';
export { SuperJsonSerializer, type Serializer } from './serializers/serializer.js';
