import { MemoryBackend } from '../../src/backends/memory/memory-backend.js';
import { ChaosBackend } from '../../src/testing/chaos-backend.js';
import { describeBackendConformance } from '../../src/testing/conformance-suite.js';

describeBackendConformance('MemoryBackend', {
  create: ({ clock }) => new MemoryBackend({ clock }),
  richValues: true,
});

// ChaosBackend answers every operation with a promise: running a healthy one over a MemoryBackend proves the
// suite awaits every answer and does not rely on synchronous backends.
describeBackendConformance('ChaosBackend (healthy) over MemoryBackend', {
  create: ({ clock }) => new ChaosBackend(new MemoryBackend({ clock })),
  richValues: true,
});
