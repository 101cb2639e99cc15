import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// A sample's README is read on GitHub and in a clone: every file it names must be in the repository.
const root = fileURLToPath(new URL('../../', import.meta.url));
const samples = readdirSync(join(root, 'samples'), { withFileTypes: true })
  .filter(entry => entry.isDirectory())
  .map(entry => entry.name);

/** Relative link targets (`[text](target)`) and file names in backticks (`domain.ts`, `test/samples/x.txt`). */
function referencedFiles(markdown: string): Array<{ ref: string; link: boolean }> {
  const refs: Array<{ ref: string; link: boolean }> = [];
  for (const match of markdown.matchAll(/\]\(([^)\s]+)\)/g)) {
    const target = match[1]!.split('#')[0]!;
    if (target !== '' && !/^[a-z]+:/i.test(target)) refs.push({ ref: target, link: true });
  }
  for (const match of markdown.matchAll(/`([\w./-]+\.(?:ts|md|txt|json|mjs|js))`/g)) refs.push({ ref: match[1]!, link: false });
  return refs;
}

describe.each(samples)('samples/%s/README.md', name => {
  const dir = join(root, 'samples', name);
  const readmePath = join(dir, 'README.md');

  it('exists', () => {
    expect(existsSync(readmePath)).toBe(true);
  });

  it('refers only to files in the repository', () => {
    const markdown = readFileSync(readmePath, 'utf8');
    expect(markdown).not.toMatch(/(^|[\s`(/])shared\//m);
    const missing = referencedFiles(markdown).filter(({ ref, link }) => {
      // Links resolve from the README's folder; a file name in backticks from the sample's folder or the root.
      const candidates = link ? [resolve(dirname(readmePath), ref)] : [resolve(dir, ref), resolve(root, ref)];
      const inside = candidates.filter(path => path.startsWith(root));
      return !inside.some(path => existsSync(path));
    });
    expect(missing.map(m => m.ref)).toEqual([]);
  });
});
