import { describe, expect, it } from 'vitest';
import {
  allDataPattern,
  clearMarkerKey,
  decodeKey,
  encodeKey,
  entryKey,
  leaseKey,
  markerKeys,
  partitionBase,
  partitionDataPattern,
  partitionOf,
  sequenceKey,
} from '../../src/backends/redis/key-schema.js';

describe('Redis key schema', () => {
  it('names every kind of key under <prefix>ac2:{p<n>}:', () => {
    const base = partitionBase('shop:', 3);
    expect(base).toBe('shop:ac2:{p3}:');
    expect(entryKey(base, 'k')).toBe('shop:ac2:{p3}:v:k');
    expect(leaseKey(base, 'k')).toBe('shop:ac2:{p3}:l:k');
    expect(sequenceKey(base)).toBe('shop:ac2:{p3}:s');
    expect(clearMarkerKey(base)).toBe('shop:ac2:{p3}:c');
    expect(markerKeys(base, 'k', ['d1', 'd2'])).toEqual(['shop:ac2:{p3}:g:k', 'shop:ac2:{p3}:g:d1', 'shop:ac2:{p3}:g:d2']);
  });

  it('escapes glob characters of the prefix in SCAN patterns', () => {
    expect(partitionDataPattern(partitionBase('a*b?[c]\\', 0))).toBe('a\\*b\\?\\[c\\]\\\\ac2:{p0}:[vim]:*');
    expect(allDataPattern('a*')).toBe('a\\*ac2:{p*}:[vim]:*');
  });

  // Every process must agree on a key's partition, and entries already stored must stay findable: the hash
  // may not change within a schema version.
  it('keeps the partition of a key stable (FNV-1a values pinned)', () => {
    expect(['', 'a', 'Product:1', 'sku-00042', 'ünïcode', '\ud800x'].map(k => partitionOf(k, 16))).toEqual([5, 12, 9, 1, 5, 5]);
    expect(['', 'a', 'Product:1', 'sku-00042', 'ünïcode', '\ud800x'].map(k => partitionOf(k, 1024))).toEqual([453, 300, 521, 881, 53, 293]);
    expect(partitionOf('anything', 1)).toBe(0);
  });

  it('encodes lone surrogates and the escape character injectively, and decodes them back', () => {
    const keys = ['plain', 'a\ud800b', 'a\udc00b', 'a\ufffeb', 'a\ufffed800b', '\ud83d\ude00 paired', 'x\ud800'];
    const encoded = keys.map(encodeKey);
    expect(encoded[0]).toBe('plain');
    expect(encoded[5]).toBe('\ud83d\ude00 paired');
    expect(new Set(encoded).size).toBe(keys.length);
    for (const name of encoded) expect(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(name)).toBe(false);
    expect(encoded.map(decodeKey)).toEqual(keys);
  });
});
