import { Redis } from 'ioredis';
import { RedisBackend } from '/work/main/src/redis.js';
const client = new Redis({ port: 6399 });
await client.flushall();
const b = new RedisBackend({ client, keyPrefix: 't:' });
const e = (value: unknown, dependencies: string[]) => ({ value, async: true, dependencies, expiresAt: Infinity, sliding: 0 });
for (let round = 0; round < 5; round++) {
  const dep = `Group:${round}`;
  const N = 10000;
  for (let c = 0; c < N; c += 500) {
    await Promise.all(Array.from({ length: 500 }, async (_, j) => { const k = `Dependents.value("${dep}",${c + j})`; const l = await b.get(k); if (!l.hit) await b.set(k, e(1, [dep]), l.token); }));
  }
  await client.config('RESETSTAT');
  const t = performance.now();
  const r = await b.invalidate([dep]);
  const wall = performance.now() - t;
  const info = await client.info('commandstats');
  const m = /cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(info);
  console.log(`removed ${r.removed.length} wall ${wall.toFixed(1)} ms server ${(Number(m?.[1]) / 1000).toFixed(1)} ms`);
}
await client.quit();
