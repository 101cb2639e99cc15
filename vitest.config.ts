import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One shared test folder runs twice: once with legacy decorators (experimentalDecorators, the mode tsyringe
// needs) transformed by Oxc, once with TC39 decorators transformed by SWC (Oxc does not lower them).
/** SWC options that lower TC39 decorators (2023-11), for the projects of that mode. */
const standardDecorators = {
  tsconfigFile: false,
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    target: 'es2022',
    keepClassNames: true,
    transform: { decoratorVersion: '2023-11', useDefineForClassFields: true },
  },
} as const;

const alias = { 'aspect-cache/testing': new URL('./src/testing.ts', import.meta.url).pathname, 'aspect-cache/tsyringe': new URL('./src/tsyringe.ts', import.meta.url).pathname, 'aspect-cache/nestjs': new URL('./src/nestjs.ts', import.meta.url).pathname, 'aspect-cache': new URL('./src/index.ts', import.meta.url).pathname };

export default defineConfig({
  test: {
    testTimeout: 20_000,
    hookTimeout: 60_000,
    projects: [
      {
        oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
        resolve: { alias },
        test: {
          name: 'legacy',
          include: ['test/shared/**/*.test.ts', 'test/legacy/**/*.test.ts', 'test/unit/**/*.test.ts', 'test/conformance/**/*.test.ts'],
          setupFiles: ['reflect-metadata'],
        },
      },
      {
        plugins: [
          swc.vite(standardDecorators),
        ],
        resolve: { alias },
        test: { name: 'standard', include: ['test/shared/**/*.test.ts', 'test/standard/**/*.test.ts', 'test/samples/**/*.test.ts'] },
      },
      // Type tests (test/types/**/*.test-d.ts): tsc checks them, once per decorator mode, and each test()'s
      // expectTypeOf and @ts-expect-error lines are reported as that test's result. Nothing runs, but vitest
      // still transforms the files to find the test() calls: each project transforms its decorators like the
      // runtime project of its mode (Oxc fails on parameter decorators, vitest's walker on `accessor` fields).
      {
        oxc: { decorator: { legacy: true, emitDecoratorMetadata: true } },
        test: {
          name: 'types-legacy',
          typecheck: { enabled: true, only: true, include: ['test/types/shared/**/*.test-d.ts', 'test/types/legacy/**/*.test-d.ts'], tsconfig: './tsconfig.types-legacy.json' },
        },
      },
      {
        plugins: [swc.vite(standardDecorators)],
        test: {
          name: 'types-standard',
          typecheck: { enabled: true, only: true, include: ['test/types/shared/**/*.test-d.ts', 'test/types/standard/**/*.test-d.ts'], tsconfig: './tsconfig.types-standard.json' },
        },
      },
      {
        // Integration tests against real Redis servers (standalone + 3-master cluster) that the global setup
        // starts on free loopback ports. Files run one at a time: they share those servers, and server-wide
        // state (INFO commandstats, CONFIG RESETSTAT, topology changes) must not be disturbed by another file.
        plugins: [
          swc.vite(standardDecorators),
        ],
        resolve: { alias },
        test: {
          name: 'redis',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/integration/support/global-setup.ts'],
          fileParallelism: false,
        },
      },
    ],
  },
});
