/** The error a call fails with, whether it throws synchronously or rejects; fails if it succeeds. */
export async function failureOf(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a failure, the call succeeded');
}
