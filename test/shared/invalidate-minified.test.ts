import { transformSync as swcTransform } from '@swc/core';
import { transformSync as esbuildTransform } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bindCachingService, Cache, CachingError, CachingService, InvalidateCache } from 'aspect-cache';
import { definitionError } from '../support/definition-error.js';

// @InvalidateCache's mapping by parameter name in minified code (SPEC §3, §6; issue 8 case 10). Minifiers
// rename parameters: `updatePrice(price, id)` becomes `updatePrice(e, t)` and `getPrice(id)` becomes
// `getPrice(e)`, so a mapping by name would invalidate getPrice(price) and the old price would be served.
// The classes below are real minifier output: TypeScript source with decorators, lowered and minified by
// esbuild and by SWC (legacy and TC39 decorators each), then evaluated. Each vitest project runs all four.

let service: CachingService;

beforeEach(() => {
  service = new CachingService({ logger: { debug: vi.fn(), warn: vi.fn(), error: vi.fn() } });
});

afterEach(async () => {
  await service.dispose();
});

type Minifier = 'esbuild' | 'esbuild (identifiers only)' | 'swc';
type Mode = 'legacy' | 'standard';

let serial = 0;

/**
 * Minifies a TypeScript module that reads `lib` (the library's exports) and assigns `exports.cls`. `NAME` in
 * the source is replaced by a unique class name (class names are kept, as bundlers' keepNames options do, so no
 * two tests define the same Class.method).
 */
function minify(source: string, minifier: Minifier, mode: Mode): string {
  const name = `Minified${++serial}`;
  const ts = `const { Cache, InvalidateCache } = lib;\n${source.replaceAll('NAME', name)}\nexports.cls = ${name};\n`;
  if (minifier === 'swc') {
    return swcTransform(ts, {
      jsc: {
        parser: { syntax: 'typescript', decorators: true },
        target: 'es2022',
        transform: mode === 'legacy' ? { legacyDecorator: true, decoratorMetadata: false, useDefineForClassFields: true } : { decoratorVersion: '2023-11', useDefineForClassFields: true },
        minify: { mangle: { keep_classnames: true }, compress: false },
      },
      minify: true,
      module: { type: 'commonjs' },
    }).code;
  }
  return esbuildTransform(ts, {
    loader: 'ts',
    target: 'es2022',
    format: 'cjs',
    keepNames: true,
    ...(minifier === 'esbuild' ? { minify: true } : { minifyIdentifiers: true }),
    tsconfigRaw: { compilerOptions: { experimentalDecorators: mode === 'legacy', useDefineForClassFields: true } },
  }).code;
}

/** Minifies and evaluates a module (defining its class runs its decorators), returning `exports.cls`. */
function minified(source: string, minifier: Minifier, mode: Mode): new () => any {
  const exports: { cls?: new () => any } = {};
  new Function('exports', 'lib', minify(source, minifier, mode))(exports, { Cache, InvalidateCache });
  return exports.cls!;
}

const priceBook = `
class NAME {
  prices = new Map<string, number>([['corn', 1], ['wheat', 2]]);
  runs: string[] = [];
  @Cache()
  async getPrice(id: string): Promise<number> {
    this.runs.push(id);
    return this.prices.get(id)!;
  }
  @InvalidateCache('getPrice')
  async updatePrice(price: number, id: string): Promise<void> {
    this.prices.set(id, price);
  }
}`;

const variants: Array<[Minifier, Mode]> = [
  ['esbuild', 'legacy'],
  ['esbuild', 'standard'],
  ['swc', 'legacy'],
  ['swc', 'standard'],
  ['esbuild (identifiers only)', 'legacy'],
  ['esbuild (identifiers only)', 'standard'],
];

describe.each(variants)('minified by %s, %s decorators', (minifier, mode) => {
  it('the minifier really renamed the parameters to names that coincide (the setup this guards against)', () => {
    const code = minify(priceBook, minifier, mode);
    const update = /updatePrice\(([^)]*)\)/.exec(code)![1]!.split(',').map(s => s.trim());
    const get = /getPrice\(([^)]*)\)\s*\{/.exec(code)![1]!.split(',').map(s => s.trim());
    expect(update).toHaveLength(2);
    expect(update).not.toContain('price');
    // getPrice's only parameter has the name of updatePrice's *first* one (the price): by name, it would map.
    expect(get).toEqual([update[0]]);
  });

  it('name mapping between minified parameters fails at class definition, asking for an explicit args mapper', () => {
    const error = definitionError(() => minified(priceBook, minifier, mode), 'E_INVALIDATION_MAPPING');
    expect(error.message).toContain('updatePrice');
    expect(error.message).toContain('getPrice');
    expect(error.message).toContain('minified');
    expect(error.message).toContain("{ method: 'getPrice', args:");
  });

  it('with an explicit args mapper the minified class invalidates the right entry', async () => {
    const cls = minified(
      priceBook.replace("@InvalidateCache('getPrice')", "@InvalidateCache({ method: 'getPrice', args: (price: number, id: string) => [id] })"),
      minifier,
      mode,
    );
    const book = bindCachingService(new cls(), service);
    expect(await book.getPrice('corn')).toBe(1);
    expect(await book.getPrice('wheat')).toBe(2);
    await book.updatePrice(10, 'corn');
    expect(await book.getPrice('corn')).toBe(10);
    expect(await book.getPrice('wheat')).toBe(2);
    expect(book.runs).toEqual(['corn', 'wheat', 'corn']);
  });

  it('a single-parameter invalidator still maps by name when minified: there is nothing to confuse', async () => {
    const cls = minified(
      `
class NAME {
  runs: string[] = [];
  @Cache()
  async getItem(id: string): Promise<string> {
    this.runs.push(id);
    return id;
  }
  @InvalidateCache('getItem')
  async removeItem(id: string): Promise<void> {}
}`,
      minifier,
      mode,
    );
    const store = bindCachingService(new cls(), service);
    await store.getItem('a');
    await store.getItem('b');
    await store.removeItem('a');
    await store.getItem('a');
    await store.getItem('b');
    expect(store.runs).toEqual(['a', 'b', 'a']);
  });

  it('an invalidator whose target has no parameters needs no mapping, minified or not', async () => {
    const cls = minified(
      `
class NAME {
  runs = 0;
  @Cache()
  async listAll(): Promise<number> {
    return ++this.runs;
  }
  @InvalidateCache('listAll')
  async add(name: string, price: number): Promise<void> {}
}`,
      minifier,
      mode,
    );
    const store = bindCachingService(new cls(), service);
    expect(await store.listAll()).toBe(1);
    await store.add('x', 1);
    expect(await store.listAll()).toBe(2);
  });
});

describe('the rule, on unminified code', () => {
  it('descriptive names keep mapping by name: updatePrice(price, id) invalidates getPrice(id)', async () => {
    const runs: string[] = [];
    class NamedPrices {
      prices = new Map([['corn', 1]]);
      @Cache()
      async getPrice(id: string): Promise<number> {
        runs.push(id);
        return this.prices.get(id)!;
      }
      @InvalidateCache('getPrice')
      async updatePrice(price: number, id: string): Promise<void> {
        this.prices.set(id, price);
      }
    }
    const book = bindCachingService(new NamedPrices(), service);
    await book.getPrice('corn');
    await book.updatePrice(5, 'corn');
    expect(await book.getPrice('corn')).toBe(5);
    expect(runs).toEqual(['corn', 'corn']);
  });

  it('one name longer than two characters is enough: move(id, to) cannot, update(id, price) can', () => {
    expect(() => {
      class OneLongName {
        @Cache()
        async get(id: string): Promise<number> {
          return 1;
        }
        @InvalidateCache('get')
        async update(id: string, price: number): Promise<void> {}
      }
      return OneLongName;
    }).not.toThrow();
    const error = definitionError(() => {
      class AllShortNames {
        @Cache()
        async tile(id: string): Promise<number> {
          return 1;
        }
        @InvalidateCache('tile')
        async move(id: string, to: string): Promise<void> {}
      }
      return AllShortNames;
    }, 'E_INVALIDATION_MAPPING');
    expect(error).toBeInstanceOf(CachingError);
    expect(error.message).toMatch(/on (AllShortNames\.)?move:/);
    expect(error.message).toContain('(id, to)');
    expect(error.message).toContain("{ method: 'tile', args:");
  });

  it('short hand-written names work with an explicit args mapper', async () => {
    const runs: string[] = [];
    class Grid {
      @Cache()
      async cell(x: number, y: number): Promise<string> {
        runs.push(`${x},${y}`);
        return `${x},${y}`;
      }
      @InvalidateCache({ method: 'cell', args: (x: number, y: number) => [x, y] })
      async paint(x: number, y: number): Promise<void> {}
    }
    const grid = bindCachingService(new Grid(), service);
    await grid.cell(1, 2);
    await grid.cell(2, 1);
    await grid.paint(1, 2);
    await grid.cell(1, 2);
    await grid.cell(2, 1);
    expect(runs).toEqual(['1,2', '2,1', '1,2']);
  });
});
