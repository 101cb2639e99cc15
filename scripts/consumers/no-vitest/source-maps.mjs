// Run with --enable-source-maps: an error thrown inside the library has a stack trace that points at the
// shipped TypeScript sources, and every source listed by the shipped .js.map and .d.ts.map files exists.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cache, CachingError } from 'aspect-cache';

let error;
try {
  class Broken {
    broken() {}
  }
  // @Cache on a field, applied by hand in the TC39 shape: the library rejects it with a CachingError.
  Cache()(undefined, { kind: 'field', name: 'broken', static: false, private: false, metadata: undefined, addInitializer() {}, access: {} });
  void Broken;
} catch (caught) {
  error = caught;
}
assert.ok(error instanceof CachingError, `expected a CachingError, got ${error}`);
const frame = error.stack.split('\n').find(line => line.includes('node_modules/aspect-cache/'));
assert.ok(frame, `no library frame in:\n${error.stack}`);
assert.match(frame, /node_modules\/aspect-cache\/src\/.+\.ts:\d+:\d+/, `the library frame is not mapped to src/*.ts: ${frame}`);

const root = dirname(fileURLToPath(import.meta.resolve('aspect-cache/package.json')));
let maps = 0;
const walk = dir => {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path);
    else if (entry.name.endsWith('.map')) {
      const map = JSON.parse(readFileSync(path, 'utf8'));
      for (const source of map.sources) {
        const file = resolve(dirname(path), map.sourceRoot ?? '', source);
        assert.ok(existsSync(file), `${path} lists ${source}, which is not in the package`);
      }
      maps++;
    }
  }
};
walk(join(root, 'dist'));
assert.ok(maps > 0, 'the package ships no source maps');
console.log(`stack frame mapped (${frame.trim()}); ${maps} maps resolve to shipped sources`);
