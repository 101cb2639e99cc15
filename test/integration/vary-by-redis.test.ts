// Vary-by contexts on real Redis (SPEC §11; the model and its invariants: ../support/vary-by-model.ts).
// A shorter randomized run of the leak model on the standalone server and on the 3-master cluster, with two
// CachingServices, each with its own RedisBackend on its own connection, sharing one key prefix (as two
// processes do); then, deterministically, that a variant record written by one process is used by the other:
// a parent computed by service A for a tenant is a hit in service B for that tenant and a miss for another.
// Rerun one seed with VARY_SEEDS=1234 VARY_OPERATIONS=5000 npx vitest run --project redis test/integration/vary-by-redis.test.ts
import { afterEach, expect, it } from 'vitest';
import { CachingService } from '../../src/index.js';
import { RedisBackend } from '../../src/redis.js';
import { defineVaryModel, request, RequestScope, requestContexts, Rng, runVaryModel, summarizeVary, TENANTS, VaryDataSource, varyActors, type VaryActor, type VaryModelInstance } from '../support/vary-by-model.js';
import { purgePrefix } from './support/backend-support.js';
import { clusterClient, describeRedis, ready, standaloneClient, uniquePrefix, type RedisClient } from './support/redis.js';

const SEEDS = process.env.VARY_SEEDS ? process.env.VARY_SEEDS.split(',').map(Number) : [1];
const OPERATIONS = Number(process.env.VARY_OPERATIONS ?? 1_500);
/** VARY_REPORT=1 prints each run's numbers. */
const REPORT = process.env.VARY_REPORT !== undefined;

const services: CachingService[] = [];
afterEach(async () => {
  await Promise.all(services.splice(0).map(s => s.dispose()));
});

/** Two services, each with its own connection and RedisBackend, on one key prefix. */
async function twoProcesses(connect: () => RedisClient, ds: VaryDataSource, scope: RequestScope): Promise<{ actors: VaryActor[]; clients: RedisClient[]; keyPrefix: string }> {
  const keyPrefix = uniquePrefix('vary-by');
  const clients = [connect(), connect()];
  await Promise.all(clients.map(client => ready(client)));
  const actors = varyActors(2, i => new RedisBackend({ client: clients[i]!, keyPrefix }), { ds, scope, model: defineVaryModel(), contexts: requestContexts(scope) });
  services.push(...actors.map(a => a.service));
  return { actors, clients, keyPrefix };
}

for (const [name, connect] of [
  ['standalone', () => standaloneClient()],
  ['cluster', () => clusterClient()],
] as const) {
  describeRedis(`vary-by model on Redis (${name}), two services sharing one prefix`, () => {
    it.each(SEEDS)('no tenant, user or role leaks and no stale values, seed %i', async seed => {
      const scope = new RequestScope();
      const ds = new VaryDataSource(new Rng(seed));
      const { actors, clients, keyPrefix } = await twoProcesses(connect, ds, scope);
      try {
        const report = await runVaryModel({
          seed,
          operations: OPERATIONS,
          concurrency: 16,
          actors,
          ds,
          scope,
          faults: { hold: 0.3, fail: 0.03 },
          // Every tenant under an admin, a staff member and a user without roles: each role view, each tenant.
          sweepRequests: k => TENANTS.flatMap(t => ['alice', 'bob', 'dave'].map(u => request(t, u, k % 3))),
          settleMs: 10_000,
        });
        if (REPORT) console.log(summarizeVary(report));
        expect(report.counts, summarizeVary(report)).toEqual({});
        expect(report.calls, summarizeVary(report)).toBeGreaterThan(OPERATIONS / 2);
        expect(report.writes).toBeGreaterThan(OPERATIONS / 10);
        expect(report.bursts).toBeGreaterThan(0);
        expect(report.failedCalls).toBeGreaterThan(0);
        expect(report.contextErrors).toBeGreaterThan(0);
        expect(report.joins).toBeGreaterThan(0);
      } finally {
        await purgePrefix(clients[0]!, keyPrefix);
      }
    }, 60_000);

    it("a variant record written by one service is used by the other: a hit for the same tenant and roles, a miss for another tenant's", async () => {
      const scope = new RequestScope();
      const ds = new VaryDataSource(new Rng(1));
      const { actors, clients, keyPrefix } = await twoProcesses(connect, ds, scope);
      const [a, b] = actors as [VaryActor, VaryActor];
      const under = <T>(tenant: string, user: string, fn: () => Promise<T>) => scope.run(request(tenant, user), fn);
      // A variant record is written in the background (begin + set, after the caller has its value): the other
      // service finds it only once it has landed.
      const recorded = () => new Promise(resolve => setTimeout(resolve, 200));
      const executed = (model: VaryModelInstance) => ({ ...model.executions });
      try {
        const computedByA = await under('acme', 'bob', () => a.model.card(0));
        expect(executed(a.model)).toMatchObject({ card: 1, price: 1, cost: 1, label: 1 });
        await recorded();

        // Same tenant, another user with the same roles: B finds A's entry through the stored variant record.
        const sameTenant = await under('acme', 'carol', () => b.model.card(0));
        expect(sameTenant.id).toBe(computedByA.id);
        expect(executed(b.model)).toMatchObject({ card: 0, price: 0, cost: 0, label: 0 });

        // Another tenant: a miss, computed from that tenant's rows.
        const otherTenant = await under('globex', 'bob', () => b.model.card(0));
        expect(executed(b.model)).toMatchObject({ card: 1, price: 1 });
        expect(otherTenant.parts[0]!.rows.map(r => r.id)).toEqual(['price:globex:0']);
        // cost(0) for staff reads no tenant: its entry is shared across tenants, so only price and label ran.
        expect(executed(b.model)).toMatchObject({ cost: 0 });

        // Same tenant, other roles (an admin): the card varies by roles through cost(0), so a miss too.
        const admin = await under('acme', 'alice', () => b.model.card(0));
        expect(executed(b.model)).toMatchObject({ card: 2, cost: 1 });
        expect(admin.parts[1]!.rows.map(r => r.id)).toEqual(['cost:acme:0']);
        await recorded();
        // …and A finds the admin's variant B stored.
        expect((await under('acme', 'alice', () => a.model.card(0))).id).toBe(admin.id);
        expect(executed(a.model)).toMatchObject({ card: 1 });

        // varyBy ['user'] over a child reading 'user.roles': stored per user, found by the other service.
        const profile = await under('acme', 'alice', () => a.model.profile(0));
        await recorded();
        expect((await under('acme', 'alice', () => b.model.profile(0))).id).toBe(profile.id);
        expect(executed(b.model)).toMatchObject({ profile: 0 });
        const erin = await under('acme', 'erin', () => b.model.profile(0));
        expect(executed(b.model)).toMatchObject({ profile: 1 });
        expect(erin.rows.map(r => r.id)).toEqual(['pref:erin']);

        // One price invalidated by A removes every variant that read it, in both services, and only those.
        ds.write('price:acme:0');
        await a.service.invalidate('price:acme:0');
        const cardsBefore = b.model.executions.card;
        const fresh = await under('acme', 'carol', () => b.model.card(0));
        expect(fresh.parts[0]!.rows).toEqual([{ id: 'price:acme:0', v: 2 }]);
        expect((await under('acme', 'alice', () => b.model.card(0))).parts[0]!.rows).toEqual([{ id: 'price:acme:0', v: 2 }]);
        expect(b.model.executions.card).toBe(cardsBefore + 2);
        expect((await under('globex', 'bob', () => a.model.card(0))).id).toBe(otherTenant.id);
      } finally {
        await purgePrefix(clients[0]!, keyPrefix);
      }
    }, 30_000);
  });
}
