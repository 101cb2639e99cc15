import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// One shared test folder runs twice: once with legacy decorators (experimentalDecorators, the mode tsyringe
// needs) transformed by Oxc, once with TC39 decorators transformed by SWC (Oxc does not lower them).
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
          swc.vite({
            tsconfigFile: false,
            jsc: {
              parser: { syntax: 'typescript', decorators: true },
              target: 'es2022',
              keepClassNames: true,
              transform: { decoratorVersion: '2023-11', useDefineForClassFields: true },
            },
          }),
        ],
        resolve: { alias },
        test: { name: 'standard', include: ['test/shared/**/*.test.ts', 'test/standard/**/*.test.ts', 'test/samples/**/*.test.ts'] },
      },
      {
        // Integration tests against real Redis servers (standalone + 3-master cluster) that the global setup
        // starts on free loopback ports. Files run one at a time: they share those servers, and server-wide
        // state (INFO commandstats, CONFIG RESETSTAT, topology changes) must not be disturbed by another file.
        plugins: [
          swc.vite({
            tsconfigFile: false,
            jsc: {
              parser: { syntax: 'typescript', decorators: true },
              target: 'es2022',
              keepClassNames: true,
              transform: { decoratorVersion: '2023-11', useDefineForClassFields: true },
            },
          }),
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
