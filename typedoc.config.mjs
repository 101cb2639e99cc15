// TypeDoc configuration for the API reference (`npm run docs`, output in docs/api/, not committed).
// The entry points come from package.json "exports": every subpath whose types live in dist/<name>.d.ts is
// documented from src/<name>.ts, so a new subpath export (e.g. ./nestjs) is documented without editing this file.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));
const entryPoints = Object.values(pkg.exports)
  .map(target => (typeof target === 'object' ? target.types : undefined))
  .filter(types => typeof types === 'string')
  .map(types => types.replace(/^\.\/dist\/(.+)\.d\.ts$/, './src/$1.ts'));

/** @type {Partial<import('typedoc').TypeDocOptions>} */
const config = {
  name: pkg.name,
  entryPoints,
  tsconfig: './tsconfig.build.json',
  out: 'docs/api',
  readme: 'none',
  // Source links point at the repository named in package.json, not at whatever git remote a checkout has
  // (a CI clone's origin is a local path, which TypeDoc would warn about and CI would fail on).
  disableGit: true,
  sourceLinkTemplate: `${String(pkg.repository?.url ?? '').replace(/^git\+/, '').replace(/\.git$/, '')}/blob/main/{path}#L{line}`,
  excludePrivate: true,
  excludeInternal: true,
  // Structural types of third-party objects (a superjson instance, an OpenTelemetry tracer and meter): users
  // pass the real library's objects, so these are not exported and are shown by name only.
  intentionallyNotExported: ['src/serializers/serializer.ts:SuperJsonInstance', 'src/telemetry/open-telemetry.ts:OtelTracer', 'src/telemetry/open-telemetry.ts:OtelMeter',
    // Helper types inside the decorators' signatures (what they accept); shown by name only.
    ...['PublicInstanceMember', 'Prototype', 'NotAMethod', 'AnyClass', 'AnyMethod'].map(name => `src/decorators/decorator-types.ts:${name}`)],
  sort: ['kind', 'instance-first', 'alphabetical-ignoring-documents'],
  // `npm run docs:check` adds --treatWarningsAsErrors: an export without JSDoc, a {@link} that does not
  // resolve or a public type that is used but not exported fails CI.
  validation: { notExported: true, invalidLink: true, invalidPath: true, rewrittenLink: true, notDocumented: true, unusedMergeModuleWith: true },
};
export default config;
