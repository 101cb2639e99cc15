// Loaded with `node --import tsx --import ./bench/built-library.mjs`: the benchmarks measure the built package
// (dist/, the tsc output that users install), not src/ compiled on the fly by tsx. tsx's esbuild transform adds
// work of its own to the library's code (it wraps every named closure in a __name() call, for example), which
// measurably slows the hit path; the benchmark files still import from src/ (so they type-check without a
// build) and this hook redirects those imports to the matching files in dist/. BENCH_LIBRARY=src measures the
// sources through tsx instead. The npm bench scripts build first.
import { existsSync } from 'node:fs';
import { register } from 'node:module';

if (process.env.BENCH_LIBRARY !== 'src') {
  if (!existsSync(new URL('../dist/index.js', import.meta.url))) {
    throw new Error('bench: dist/ is missing; run `npm run build` first (the npm bench scripts do), or set BENCH_LIBRARY=src.');
  }
  register('./built-library-hooks.mjs', import.meta.url);
}
