import { LayeredBackend } from '../../src/backends/layered/layered-backend.js';
import { MemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { ChaosBackend } from '../../src/testing/chaos-backend.js';
import { describeBackendConformance } from '../../src/testing/conformance-suite.js';
import { TestBusNetwork } from '../../src/testing/test-bus.js';

// The layered backend over a memory L2 and the in-process bus passes the same contract as every backend.
describeBackendConformance('LayeredBackend (memory L1 over memory L2, test bus)', {
  create: ({ clock }) => new LayeredBackend({ l1: new MemoryBackend({ clock }), l2: new MemoryBackend({ clock }), bus: new TestBusNetwork({ heartbeatMs: 20 }).connect() }),
  richValues: true,
});

// Over an L2 that answers with promises (as Redis does), with an l1Ttl cap.
describeBackendConformance('LayeredBackend (memory L1 over an asynchronous L2, l1Ttl)', {
  create: ({ clock }) => new LayeredBackend({ l1: new MemoryBackend({ clock }), l2: new ChaosBackend(new MemoryBackend({ clock })), bus: new TestBusNetwork({ heartbeatMs: 20 }).connect(), l1Ttl: 60_000 }),
  richValues: true,
});
