import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

// Samples run as their own processes, exactly as `npm run sample:<name>` runs them (tsx with the samples'
// tsconfig, or a sample's own), so what a test checks is what a user sees.
const root = fileURLToPath(new URL('../../', import.meta.url));
const tsxCli = createRequire(import.meta.url).resolve('tsx/cli');
const expectedDir = new URL('../samples/expected/', import.meta.url);

/** What a sample process did. */
export interface SampleRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `samples/<name>/main.ts`; `tsconfig` is relative to the repository (the shared samples' by default). */
export function runSample(name: string, tsconfig = 'samples/tsconfig.json', extraEnv: Record<string, string | undefined> = {}): Promise<SampleRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extraEnv };
  delete env.NODE_OPTIONS; // the test runner's own loader options must not leak into the sample
  for (const [key, value] of Object.entries(extraEnv)) if (value === undefined) delete env[key];
  return new Promise(resolve => {
    execFile(process.execPath, [tsxCli, '--tsconfig', tsconfig, `samples/${name}/main.ts`], { cwd: root, env, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** The recorded output of a sample: test/samples/expected/<name>.txt. */
export function expectedOutput(name: string): string {
  return readFileSync(new URL(`${name}.txt`, expectedDir), 'utf8');
}

/** A sample's output as lines (CRLF-tolerant, no empty last line). */
export function lines(text: string): string[] {
  return text.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
}
