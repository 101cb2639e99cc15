// Checks that every subpath export of package.json resolves to a built file and that the core entry point
// exports the public names the specification fixes. Run after `npm run build`.
import { existsSync, readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const problems = [];
for (const [subpath, target] of Object.entries(pkg.exports)) {
  if (typeof target === 'string') continue;
  for (const file of [target.types, target.default]) {
    if (!existsSync(new URL(`../${file}`, import.meta.url))) problems.push(`${subpath}: ${file} is missing`);
  }
}
const core = await import('../dist/index.js');
const required = ['Cache', 'InvalidateCache', 'CacheKey', 'CachingService', 'addDependency', 'suspendDependencyPropagation', 'StringDependency', 'ObjectDependency', 'defineDependency', 'readContext', 'setCacheOptions', 'MemoryBackend', 'CachingError'];
for (const name of required) if (!(name in core)) problems.push(`aspect-cache does not export ${name}`);
const testing = await import('../dist/testing.js');
for (const name of ['describeBackendConformance', 'ChaosBackend', 'FakeClock']) if (!(name in testing)) problems.push(`aspect-cache/testing does not export ${name}`);
const nestjs = await import('../dist/nestjs.js');
if (typeof nestjs.CachingModule?.forRoot !== 'function' || typeof nestjs.CachingModule?.forRootAsync !== 'function') problems.push('aspect-cache/nestjs does not export CachingModule with forRoot and forRootAsync');
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`exports ok: ${Object.keys(pkg.exports).length - 1} entry points`);
