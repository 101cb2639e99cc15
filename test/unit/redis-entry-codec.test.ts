import { describe, expect, it } from 'vitest';
import { entryFields, unpackEntry } from '../../src/backends/redis/entry-codec.js';
import { SuperJsonSerializer } from '../../src/serializers/serializer.js';

const serializer = new SuperJsonSerializer();

/** The `h` field as the SET script assembles it from the parts a store sends (and the cap it computes). */
function packed(cap: number, fields: ReturnType<typeof entryFields>, payload: string): string {
  return `${cap}|${fields.sliding}|${fields.staleFor}|${fields.async}|${fields.depsJson}\n${payload}`;
}

describe('Redis entry codec', () => {
  it('reads back what a store sends, with the cap converted to the local clock', () => {
    const value = { id: 7, at: new Date(5), tags: new Set(['a']) };
    const entry = { value, async: true, dependencies: ['x', 'y'], expiresAt: 1_000, sliding: 50, staleFor: 20 };
    const fields = entryFields(entry, entry.dependencies);
    expect(fields).toEqual({ depsJson: '["x","y"]', sliding: 50, staleFor: 20, async: '1' });
    const stored = unpackEntry(packed(10_000, fields, serializer.serialize(value)), serializer, 300);
    expect(stored).toEqual({ hit: { hit: true, value, async: true, dependencies: ['x', 'y'], expiresAt: 9_700, sliding: 50 }, cap: 10_000, sliding: 50, staleFor: 20 });
  });

  it('a cap of 0 never expires; a synchronous entry without staleFor', () => {
    const fields = entryFields({ value: 1, async: false, dependencies: [], expiresAt: Infinity, sliding: 0 }, []);
    expect(fields).toEqual({ depsJson: '[]', sliding: 0, staleFor: 0, async: '0' });
    const stored = unpackEntry(packed(0, fields, serializer.serialize(1)), serializer, 300);
    expect(stored.hit).toEqual({ hit: true, value: 1, async: false, dependencies: [], expiresAt: Infinity, sliding: 0 });
  });

  it('keeps a payload containing separators intact (only the header is split)', () => {
    const value = 'a|b\nc|d';
    const fields = entryFields({ value, async: false, dependencies: ['p|q'], expiresAt: Infinity, sliding: 0 }, ['p|q']);
    const stored = unpackEntry(packed(0, fields, serializer.serialize(value)), serializer, 0);
    expect(stored.hit.value).toBe(value);
    expect(stored.hit.dependencies).toEqual(['p|q']);
  });

  it('reads the eager-refresh deadline written after the async flag, converted to the local clock', () => {
    const fields = entryFields({ value: 1, async: true, dependencies: ['d'], expiresAt: 1_000, sliding: 0, refreshAt: 500 }, ['d']);
    const header = `10000|0|0|${fields.async}r8000|${fields.depsJson}\n${serializer.serialize(1)}`;
    const stored = unpackEntry(header, serializer, 300);
    expect(stored.hit).toEqual({ hit: true, value: 1, async: true, dependencies: ['d'], expiresAt: 9_700, sliding: 0, refreshAt: 7_700 });
    // An entry written without one (or by a version that predates it) has none.
    expect(unpackEntry(packed(10_000, fields, serializer.serialize(1)), serializer, 300).hit.refreshAt).toBeUndefined();
    // A reader that looks at the flag's first character only (before refreshAt existed) still reads `async` right.
    expect(header.charCodeAt(header.indexOf('|', header.indexOf('|', header.indexOf('|') + 1) + 1) + 1)).toBe(49);
  });

  it('throws on a field that is not an aspect-cache entry', () => {
    for (const foreign of ['', 'plain text', '1|2|3|0|[]', '1|2|3|0\n{}', 'x|0|0|0|[]\n{"json":1}', '0|0|0|0|{}\n{"json":1}', '0|0|0|0|[]\nnot json', '0|0|0|1rx|[]\n{"json":1}', '0|0|0|1x5|[]\n{"json":1}']) {
      expect(() => unpackEntry(foreign, serializer, 0), JSON.stringify(foreign)).toThrow();
    }
  });
});
