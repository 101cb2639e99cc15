import { expect } from 'vitest';
import { CachingError } from 'aspect-cache';

/**
 * Runs `define` (typically a class definition) once and returns the CachingError it threw, checking its code.
 * Once only: decorators have definition-time side effects.
 */
export function definitionError(define: () => unknown, code: string): CachingError {
  let thrown: unknown;
  try {
    define();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(CachingError);
  expect(thrown).toMatchObject({ code });
  return thrown as CachingError;
}
