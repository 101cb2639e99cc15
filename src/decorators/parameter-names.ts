/**
 * The parameter names of a function, read from its source text. A destructured parameter gives `null`
 * (it has no name to map by); a rest parameter gives its name with `rest: true`.
 * Works on methods, functions and arrows as emitted by tsc, SWC, Oxc and esbuild (names are kept unless minified).
 */
export interface ParameterName {
  readonly name: string | null;
  readonly rest: boolean;
}

export function parameterNames(fn: Function): ParameterName[] {
  const source = stripComments(Function.prototype.toString.call(fn));
  const open = findParameterListStart(source);
  if (open < 0) {
    // a single-parameter arrow without parentheses: `x => …`
    const m = /^\s*(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>/.exec(source);
    return m ? [{ name: m[1]!, rest: false }] : [];
  }
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = open + 1; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === '"' || ch === "'" || ch === '`') {
      const end = skipString(source, i);
      current += source.slice(i, end + 1);
      i = end;
      continue;
    }
    if (ch === '(' || ch === '[' || ch === '{') depth++;
    else if (ch === ')' || ch === ']' || ch === '}') {
      if (depth === 0) break;
      depth--;
    } else if (ch === ',' && depth === 0) {
      parts.push(current);
      current = '';
      continue;
    }
    current += ch;
  }
  if (current.trim() !== '') parts.push(current);
  return parts.map(part => {
    let text = part.trim();
    const rest = text.startsWith('...');
    if (rest) text = text.slice(3).trim();
    if (text.startsWith('{') || text.startsWith('[')) return { name: null, rest };
    const m = /^[A-Za-z_$][\w$]*/.exec(text);
    return { name: m ? m[0] : null, rest };
  });
}

function findParameterListStart(source: string): number {
  let depth = 0;
  for (let i = 0; i < source.length; i++) {
    const ch = source[i]!;
    if (ch === '"' || ch === "'" || ch === '`') {
      i = skipString(source, i);
      continue;
    }
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    else if (ch === '(' && depth === 0) return i;
    else if (ch === '=' && source[i + 1] === '>' && depth === 0) return -1;
  }
  return -1;
}

function skipString(source: string, start: number): number {
  const quote = source[start];
  for (let i = start + 1; i < source.length; i++) {
    if (source[i] === '\\') i++;
    else if (source[i] === quote) return i;
  }
  return source.length - 1;
}

function stripComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
}
