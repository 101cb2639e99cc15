/**
 * A structural estimate of a value's memory size in bytes: strings count 2 bytes per UTF-16 unit, numbers 8,
 * objects 16 plus their properties. Shared sub-objects count once; depth is capped to keep it cheap.
 */
export function estimateSize(value: unknown): number {
  return sizeOf(value, new Set(), 0);
}

function sizeOf(value: unknown, seen: Set<object>, depth: number): number {
  switch (typeof value) {
    case 'string':
      return 16 + value.length * 2;
    case 'number':
    case 'bigint':
      return 8;
    case 'boolean':
    case 'undefined':
      return 4;
    case 'symbol':
    case 'function':
      return 16;
  }
  if (value === null) return 4;
  const object = value as object;
  if (seen.has(object) || depth > 32) return 0;
  seen.add(object);
  if (ArrayBuffer.isView(object)) return 16 + object.byteLength;
  if (object instanceof ArrayBuffer) return 16 + object.byteLength;
  if (object instanceof Date) return 24;
  let total = 16;
  if (object instanceof Map) {
    for (const [k, v] of object) total += 8 + sizeOf(k, seen, depth + 1) + sizeOf(v, seen, depth + 1);
    return total;
  }
  if (object instanceof Set) {
    for (const v of object) total += 8 + sizeOf(v, seen, depth + 1);
    return total;
  }
  if (Array.isArray(object)) {
    for (const v of object) total += 8 + sizeOf(v, seen, depth + 1);
    return total;
  }
  for (const key of Object.keys(object)) total += 8 + key.length * 2 + sizeOf((object as Record<string, unknown>)[key], seen, depth + 1);
  return total;
}

/** Bytes an entry holds besides its key, value and dependency keys: the record and its slot in the LRU. */
const RECORD_OVERHEAD = 120;
/** Bytes per dependency besides its key string: its slot in the entry's list and its dependency index entry. */
const DEPENDENCY_OVERHEAD = 80;

/**
 * What an entry holds in a memory backend besides its value: its key, its dependency keys and the dependency
 * index entries they create, plus per-record bookkeeping. Conservative: a dependency key shared by several
 * entries counts once per entry, although the string is held once.
 */
export function entryOverhead(key: string, dependencies: readonly string[]): number {
  let total = RECORD_OVERHEAD + 16 + key.length * 2;
  for (const dependency of dependencies) total += DEPENDENCY_OVERHEAD + 16 + dependency.length * 2;
  return total;
}
