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
