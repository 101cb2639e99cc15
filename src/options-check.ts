import { CachingError, errors } from './errors.js';

/**
 * Throws a {@link CachingError} (`E_INVALID_OPTION`) if `options` has a property that is not in `allowed`,
 * naming it and the nearest valid name: `RedisBackend: unknown option 'prefix'; did you mean 'keyPrefix'?`.
 * A misspelt option is a configuration mistake that would otherwise be silently ignored.
 *
 * `where` names the options object in the message ("RedisBackend", "RedisBackend option lock",
 * "@Cache on Catalogue.getPrice"); `path` prefixes nested option names ("lock." gives 'lock.leasMs').
 */
export function checkKnownOptions(where: string, options: object, allowed: readonly string[], path = ''): void {
  for (const name of Object.keys(options)) {
    if (allowed.includes(name)) continue;
    const hint = nearestName(name, allowed);
    const suggestion = hint !== undefined ? `did you mean '${path}${hint}'?` : `valid options: ${allowed.map(a => path + a).join(', ')}`;
    throw new CachingError(errors.E_INVALID_OPTION, `${where}: unknown option '${path}${name}'; ${suggestion}`);
  }
}

/**
 * The option names of an interface, from an object literal that names each of them; written
 * `optionNames({ a: 0, b: 0 } satisfies Record<keyof Options, 0>)` so that adding a field to the interface
 * without listing it fails the type check.
 */
export function optionNames(fields: Record<string, 0>): readonly string[] {
  return Object.freeze(Object.keys(fields));
}

/**
 * The candidate closest to `name`, or undefined when none is plausibly meant. Closeness is the edit distance
 * (insertions, deletions, substitutions, adjacent transpositions), case-insensitive; a candidate that contains
 * the name or is contained in it (`prefix` in `keyPrefix`) also counts as close.
 */
export function nearestName(name: string, candidates: Iterable<string>): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase();
    let distance = editDistance(lower, c);
    // A word of the name missing or added ('prefix' for 'keyPrefix', 'ttlMs' for 'ttl') is a plausible slip.
    if (lower.length >= 3 && c.length >= 3 && (c.includes(lower) || lower.includes(c))) distance = Math.min(distance, 1.5);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  // Beyond about a third of the name changed, a suggestion would be a guess, not a correction.
  return best !== undefined && bestDistance <= Math.max(2, Math.ceil(name.length / 3)) ? best : undefined;
}

/** Optimal string alignment distance (Damerau–Levenshtein without repeated edits of a substring). */
function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let previous2: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, previous2[j - 2]! + 1);
      current.push(d);
    }
    previous2 = previous;
    previous = current;
  }
  return previous[b.length]!;
}
