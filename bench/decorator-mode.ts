/**
 * How tsx/esbuild compiled decorators in the bench files (they share one tsconfig): a probe decorator sees the
 * call shape. The benchmarks expect TC39 decorators and say so in their results.
 */
let mode = 'unknown';
function probe(...args: unknown[]): void {
  const context = args[1] as { kind?: unknown } | undefined;
  mode = args.length === 2 && typeof context === 'object' && context !== null && context.kind === 'method'
    ? 'TC39 (standard) decorators'
    : 'legacy (experimentalDecorators) decorators';
}
class DecoratorProbe {
  @probe
  method(): void {}
}
void DecoratorProbe;

export const decoratorMode: string = mode;
