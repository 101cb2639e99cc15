// The load generator and checker against a running service (npm run service:orderflow):
//
//   npm run service:orderflow:load -- --targets http://127.0.0.1:4100,http://127.0.0.1:4101 --writes 0.05 --duration 20
//
// Prints the report as JSON; exits 1 if a request failed or a read-back was stale beyond the bound.
import { parseArgs } from 'node:util';
import { runLoad } from './workload.js';

const { values } = parseArgs({
  options: {
    targets: { type: 'string', default: 'http://127.0.0.1:4100,http://127.0.0.1:4101' },
    writes: { type: 'string', default: '0.05' },
    duration: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '5' },
    concurrency: { type: 'string', default: '32' },
    seed: { type: 'string', default: '1' },
  },
});
const report = await runLoad({
  targets: values.targets.split(','),
  writeShare: Number(values.writes),
  durationMs: Number(values.duration) * 1000,
  warmupMs: Number(values.warmup) * 1000,
  concurrency: Number(values.concurrency),
  seed: Number(values.seed),
});
console.log(JSON.stringify(report, null, 2));
process.exitCode = report.failed > 0 || report.check.staleBeyondBound > 0 ? 1 : 0;
