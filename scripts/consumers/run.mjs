// Consumer checks: builds aspect-cache, packs it with `npm pack`, and installs the tarball into fresh projects
// the way a user would (`npm install` of the project, then `npm install <tarball>`), then runs each project's
// checks. Prints one line per check and exits non-zero if any install or check failed.
//
//   node scripts/consumers/run.mjs [consumer…] [--keep] [--no-build]
//
// A consumer is a folder next to this file holding a package.json (its own dependencies, and one npm script
// per check, named `check:<what>`) and whatever files its checks need. The checks see the tarball's path in
// $ASPECT_CACHE_TARBALL. Add a consumer by adding a folder; nothing here needs to change.
//   --keep       keep the temporary directory (it is always kept when something fails)
//   --no-build   pack the dist/ that is already there instead of building from a clean dist/
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..');
const args = process.argv.slice(2);
const keep = args.includes('--keep');
const build = !args.includes('--no-build');
const only = args.filter(arg => !arg.startsWith('--'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const COMMAND_TIMEOUT_MS = 5 * 60_000;
const PARALLEL = Math.max(1, Math.min(2, availableParallelism()));
const started = performance.now();

// Children must not inherit the npm_* variables of an outer `npm run` (prefix, package, lifecycle), which
// would point their npm at this repository; the cache and registry settings are kept.
const KEPT_NPM_VARIABLES = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig']);
const baseEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_') || KEPT_NPM_VARIABLES.has(name.toLowerCase())));

/** Runs a command; resolves with its exit code and combined output (never rejects). */
function run(command, commandArgs, { cwd, env = baseEnv } = {}) {
  return new Promise(resolve => {
    const child = spawn(command, commandArgs, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', chunk => (output += chunk));
    child.stderr.on('data', chunk => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n[timed out after ${COMMAND_TIMEOUT_MS / 1000} s]`;
      child.kill('SIGKILL');
    }, COMMAND_TIMEOUT_MS);
    child.on('error', error => {
      clearTimeout(timer);
      resolve({ code: 1, output: `${output}\n${error.message}` });
    });
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output });
    });
  });
}

const seconds = since => `${((performance.now() - since) / 1000).toFixed(1)} s`;
const tail = (text, lines = 40) => text.trimEnd().split('\n').slice(-lines).map(line => `      ${line}`).join('\n');

const consumers = readdirSync(here, { withFileTypes: true })
  .filter(entry => entry.isDirectory())
  .map(entry => entry.name)
  .filter(name => only.length === 0 || only.includes(name))
  .sort();
const unknown = only.filter(name => !consumers.includes(name));
if (unknown.length > 0 || consumers.length === 0) {
  console.error(`unknown consumer(s): ${unknown.join(', ') || '(none given)'}; known: ${readdirSync(here, { withFileTypes: true }).filter(e => e.isDirectory()).map(e => e.name).join(', ')}`);
  process.exit(2);
}

const work = mkdtempSync(join(tmpdir(), 'aspect-cache-consumers-'));

if (build) {
  const buildStart = performance.now();
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  const result = await run(npm, ['run', 'build', '--silent'], { cwd: root });
  if (result.code !== 0) {
    console.error(`FAIL  build\n${tail(result.output)}`);
    process.exit(1);
  }
  console.log(`built in ${seconds(buildStart)}`);
}
const pack = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root });
if (pack.code !== 0) {
  console.error(`FAIL  npm pack\n${tail(pack.output)}`);
  process.exit(1);
}
const [packed] = JSON.parse(pack.output.slice(pack.output.indexOf('[')));
const tarball = join(work, packed.filename);
console.log(`packed ${packed.filename}: ${packed.entryCount} files, ${(packed.size / 1024).toFixed(0)} kB`);

/** Installs one consumer and runs its checks; returns one result per check. */
async function check(name) {
  const consumerStart = performance.now();
  const dir = join(work, name);
  cpSync(join(here, name), dir, { recursive: true });
  const scripts = Object.keys(JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts ?? {}).filter(script => script.startsWith('check:'));
  if (scripts.length === 0) return [{ name, check: '(none)', ok: false, time: '0 s', output: 'package.json has no check:* script' }];
  const installFlags = ['--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'];
  for (const step of [['install', ...installFlags], ['install', ...installFlags, tarball]]) {
    const installed = await run(npm, step, { cwd: dir });
    if (installed.code !== 0) {
      const what = step.length > installFlags.length + 1 ? 'npm install <tarball>' : 'npm install';
      return scripts.map(script => ({ name, check: script, ok: false, time: seconds(consumerStart), output: `${what} failed:\n${installed.output}` }));
    }
  }
  const installTime = seconds(consumerStart);
  const results = [];
  for (const script of scripts) {
    const checkStart = performance.now();
    const result = await run(npm, ['run', '--silent', script], { cwd: dir, env: { ...baseEnv, ASPECT_CACHE_TARBALL: tarball } });
    results.push({ name, check: script, ok: result.code === 0, time: `${seconds(checkStart)}, install ${installTime}`, output: result.output });
  }
  return results;
}

const results = [];
const queue = [...consumers];
await Promise.all(
  Array.from({ length: PARALLEL }, async () => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      for (const result of await check(name)) {
        results.push(result);
        console.log(`${result.ok ? 'PASS' : 'FAIL'}  ${result.name.padEnd(16)} ${result.check.padEnd(30)} (${result.time})`);
      }
    }
  }),
);

const failed = results.filter(result => !result.ok);
for (const result of failed) console.log(`\n--- ${result.name} ${result.check}:\n${tail(result.output)}`);
console.log(`\nconsumers: ${results.length - failed.length} passed, ${failed.length} failed in ${seconds(started)}`);
if (failed.length > 0 || keep) console.log(`projects kept in ${work}`);
else rmSync(work, { recursive: true, force: true });
process.exit(failed.length > 0 ? 1 : 0);
